// The v86 migration cookie (from a real runner's CPUID) and the destination's check of it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { parseDomainXml } from '../../domain/xml.js';
import { until } from '../../../testing/harness.js';
import { baseConfig, spawnRunner, type SpawnedRunner } from '../../../testing/runner-harness.js';
import type { MigrationCookie } from '../driver.js';
import { V86_PACKAGE_VERSION, v86CheckIncoming, v86Cookie } from './migration.js';

const doc = (mib: number) => parseDomainXml(`<domain type='v86'><name>t</name><memory unit='MiB'>${mib}</memory><os><type arch='i686'>hvm</type></os></domain>`);
const GiB = 1024 ** 3;

describe('v86 migration cookie', () => {
  let runner: SpawnedRunner;
  let cookie: MigrationCookie;

  before(async () => {
    // No boot device: the machine loads (and its runner reads the CPU) without running a guest.
    runner = spawnRunner(baseConfig({ startPaused: true }));
    await until(() => fs.existsSync(runner.paths.cpu), 60_000, 'the runner to write cpu.json');
    cookie = v86Cookie(doc(128), runner.dir);
  });
  after(() => runner?.kill());

  test('describes the engine, its exact build, the CPU from CPUID and the memory', () => {
    assert.equal(cookie.engine, 'v86');
    assert.equal(cookie.engineVersion, JSON.parse(fs.readFileSync(new URL('../../../../node_modules/v86/package.json', import.meta.url), 'utf8')).version);
    assert.match(cookie.engineVersion, /\+g[0-9a-f]+$/, 'the build tag is part of the version');
    assert.match(cookie.cpu.model, /family \d+ model \d+/);
    for (const f of ['fpu', 'tsc', 'cx8', 'cmov', 'mmx', 'sse', 'sse2']) assert.ok(cookie.cpu.features.includes(f), `${f} in ${cookie.cpu.features.join(' ')}`);
    assert.equal(cookie.vcpus, 1);
    assert.equal(cookie.memoryKiB, 128 * 1024);
  });

  test('the destination takes its own cookie and refuses a mismatched one, naming why', () => {
    const own = { model: cookie.cpu.model, features: cookie.cpu.features };
    assert.deepEqual(v86CheckIncoming(cookie, doc(128), own, 8 * GiB), []);
    assert.match(v86CheckIncoming({ ...cookie, engine: 'qemu' }, doc(128), own, 8 * GiB).join(), /qemu engine; this host's engine is v86/);
    assert.match(v86CheckIncoming({ ...cookie, engineVersion: '0.5.400+gdeadbee' }, doc(128), own, 8 * GiB).join(), /v86 0\.5\.400\+gdeadbee; this host has v86/);
    assert.match(v86CheckIncoming({ ...cookie, cpu: { ...cookie.cpu, features: [...cookie.cpu.features, 'avx512f'] } }, doc(128), own, 8 * GiB).join(), /lacks .*avx512f/);
    assert.match(v86CheckIncoming(cookie, doc(256), own, 8 * GiB).join(), /131072 KiB of memory but its definition gives 262144 KiB/);
    assert.match(v86CheckIncoming(cookie, doc(128), own, 64 * 1024 * 1024).join(), /this host has 65536 KiB/);
    assert.match(v86CheckIncoming({ ...cookie, vcpus: 2 }, doc(128), own, 8 * GiB).join(), /2 vCPUs; v86 emulates 1/);
    assert.equal(V86_PACKAGE_VERSION, cookie.engineVersion);
  });
});
