// `npm run bench`: figures measured side by side in one run, printed and written to
// docs/benchmarks.md. Not a test: nothing here asserts.
//  - cold boot to DOMUS-GUEST-READY: the PV sample through Domus (host API → runner) vs the same
//    v86 options in a bare Node script;
//  - host memory per running 128 MiB guest (runner RSS, and what the host adds);
//  - the live trace's cost: API calls per second with and without a trace watcher;
//  - re-attach time of a new host to 5 running guests after SIGKILL of the old one;
//  - `qemu`: the same PV sample on v86 and on QEMU (TCG): cold boot, a timed shell loop in the guest,
//    engine process RSS beyond the guest's RAM. Written to its own section of docs/benchmarks.md.
//  - `libvirt`: Domus's libvirt driver vs virsh on one private libvirtd (build/bench-libvirt.ts).
//  - `net`: guest → host through Domus's NAT (QEMU and v86 guests) vs QEMU's slirp (build/bench-net.ts).
//  - `migrate`: live migration between two Domus hosts and snapshots, v86 and QEMU (build/bench-migrate.ts).
//  - `engine`: the embedded engine's efficiency: Domus's v86 runner vs bare v86 vs QEMU (build/bench-engine.ts).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { processAlive } from '../main/common/fsutil.js';
import { findQemu } from '../main/host/drivers/qemu/binary.js';
import { findFirmware } from '../main/host/drivers/v86/firmware.js';
import { APP_ROOT } from '../main/common/paths.js';
import { TraceLog } from '../main/host/trace.js';
import { CONSOLE_HEADING, consoleBench } from './bench-console.js';
import { LIBVIRT_HEADING, libvirtBench } from './bench-libvirt.js';
import { ENGINE_HEADING, engineBench } from './bench-engine.js';
import { MIGRATE_HEADING, migrateBench } from './bench-migrate.js';
import { NET_HEADING, netBench } from './bench-net.js';
import { SAMPLE_CMDLINE, SerialWatch, TestHost, createOn, engineSkip, guest, type LocalEngine } from '../main/testing/harness.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);

/** The bare script: exactly the emulator options the runner uses, nothing of Domus around it. */
const BARE = `
import { V86 } from 'v86';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
const [bios, vgaBios, kernel, initrd, cmdline] = process.argv.slice(2);
const ab = (p) => { const b = fs.readFileSync(p); return { buffer: b.buffer.slice(b.byteOffset, b.byteOffset + b.length) }; };
const t0 = performance.now();
globalThis.ImageData = class { constructor(d, w, h) { this.data = d; this.width = w; this.height = h; } };
const emu = new V86({
  wasm_path: path.join(path.dirname(createRequire(import.meta.url).resolve('v86')), 'v86.wasm'),
  bios: ab(bios), vga_bios: ab(vgaBios), bzimage: ab(kernel), initrd: ab(initrd), cmdline,
  memory_size: 128 << 20, vga_memory_size: 8 << 20, autostart: true, virtio_balloon: true,
  disable_mouse: true, disable_speaker: true,
});
let text = '';
emu.add_listener('serial0-output-byte', (b) => {
  text += String.fromCharCode(b);
  if (text.includes('DOMUS-GUEST-READY')) {
    console.log(JSON.stringify({ ms: performance.now() - t0 }));
    process.exit(0);
  }
});
`;

async function bareBoot(): Promise<number> {
  const fw = findFirmware();
  const script = path.join(APP_ROOT, 'dist', 'bench-bare.mjs');
  fs.writeFileSync(script, BARE);
  const t0 = Date.now();
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [script, fw.bios, fw.vgaBios, guest('vmlinuz'), guest('initrd.gz'), SAMPLE_CMDLINE], {
      cwd: APP_ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let s = '';
    child.stdout.on('data', (d: Buffer) => (s += d.toString()));
    child.on('exit', (code) => (code === 0 ? resolve(s) : reject(new Error(`bare boot exited ${code}`))));
  });
  JSON.parse(out);
  return Date.now() - t0;
}

function rssKiB(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

async function domusBoot(t: TestHost, name: string): Promise<{ ms: number; runnerPid: number }> {
  await t.client.call('domain.create', {
    spec: { name, memoryMiB: 128, vcpus: 1, boot: { kind: 'pv', kernel: guest('vmlinuz'), initrd: guest('initrd.gz'), cmdline: SAMPLE_CMDLINE } },
  });
  const t0 = Date.now();
  const { domain } = await t.client.call('domain.start', { domain: name });
  const serial = await SerialWatch.open(t.client, name);
  await serial.wait(/DOMUS-GUEST-READY/, 180_000);
  const ms = Date.now() - t0;
  return { ms, runnerPid: t.runnerPid(domain.uuid) ?? 0 };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Sequential domain.info calls per second over the unix socket. */
async function callRate(t: TestHost, name: string, calls: number): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < calls; i++) await t.client.call('domain.info', { domain: name });
  return (calls / (performance.now() - t0)) * 1000;
}

/** The trace costs next to nothing unwatched: the same calls, rounds alternating without and with a watcher. */
async function traceCost(t: TestHost): Promise<{ without: number; withWatcher: number }> {
  await t.client.call('domain.create', {
    spec: { name: 'trace-bench', memoryMiB: 128, vcpus: 1, boot: { kind: 'pv', kernel: guest('vmlinuz'), initrd: guest('initrd.gz') } },
  });
  const watcher = await (await import('../main/cli/connect.js')).connectHost(t.paths, false);
  let received = 0;
  watcher.on('trace.record', () => received++);
  const without: number[] = [];
  const withWatcher: number[] = [];
  await callRate(t, 'trace-bench', 500);
  for (let round = 0; round < 4; round++) {
    without.push(await callRate(t, 'trace-bench', 2000));
    await watcher.call('trace.subscribe', { backlog: false });
    withWatcher.push(await callRate(t, 'trace-bench', 2000));
    await watcher.call('trace.unsubscribe', {});
  }
  watcher.close();
  if (received < 2000) throw new Error(`the watcher saw only ${received} records`);
  return { without: median(without), withWatcher: median(withWatcher) };
}

/** What one unwatched trace record costs in-process, to set against the cost of one API call. */
function unwatchedRecordNs(): number {
  const log = new TraceLog();
  const args = { domain: 'x' };
  const result = { domain: { name: 'x', state: 'running', reason: 'booted' } };
  const n = 1_000_000;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    log.request({ time: Date.now(), client: { kind: 'cli', label: 'bench' }, domain: 'x', op: 'domain.info', args, ok: true, result, durationMs: 0 });
  }
  return Number(process.hrtime.bigint() - t0) / n;
}

/** Boots 5 guests, SIGKILLs the host, and times a new host until it lists all 5 running. */
async function reattachFive(t: TestHost): Promise<number> {
  const names = [0, 1, 2, 3, 4].map((i) => `reattach-${i}`);
  for (const name of names) {
    await t.client.call('domain.create', {
      spec: { name, memoryMiB: 128, vcpus: 1, boot: { kind: 'pv', kernel: guest('vmlinuz'), initrd: guest('initrd.gz'), cmdline: SAMPLE_CMDLINE } },
    });
    await t.client.call('domain.start', { domain: name });
  }
  await t.killHost();
  const t0 = performance.now();
  await t.reconnect();
  const { domains } = await t.client.call('domain.list', { all: true });
  const ms = performance.now() - t0;
  const running = domains.filter((d) => names.includes(d.name) && d.state === 'running').length;
  if (running !== 5) throw new Error(`only ${running} of 5 guests re-attached`);
  for (const name of names) await t.client.call('domain.destroy', { domain: name });
  return ms;
}

/** `npm run bench` runs every part; `npm run bench -- trace` (or boot, reattach, console, qemu, libvirt, net) only those named. */
const parts = new Set(process.argv.slice(2).length ? process.argv.slice(2) : ['boot', 'trace', 'reattach', 'console', 'qemu', 'libvirt', 'net', 'migrate', 'engine']);
const QEMU_HEADING = '## QEMU engine';

/** Replaces (or appends) the section under `heading` of the report, keeping everything else. */
function withSection(report: string, heading: string, section: string): string {
  const start = report.indexOf(heading);
  if (start < 0) return `${report.trimEnd()}\n\n${section.trimEnd()}\n`;
  const next = report.indexOf('\n## ', start + heading.length);
  return `${report.slice(0, start)}${section.trimEnd()}\n${next < 0 ? '' : report.slice(next)}`;
}

/** One engine's run of the sample: boot time, the guest's loop time, the engine process's RSS. */
async function engineRun(t: TestHost, engine: LocalEngine, name: string): Promise<{ bootMs: number; loopMs: number; rssKiB: number }> {
  await createOn(t.client, { name, memoryMiB: 128, vcpus: 1, boot: { kind: 'pv', kernel: guest('vmlinuz'), initrd: guest('initrd.gz'), cmdline: SAMPLE_CMDLINE } }, engine);
  const t0 = Date.now();
  const { domain } = await t.client.call('domain.start', { domain: name });
  const serial = await SerialWatch.open(t.client, name);
  await serial.wait(/DOMUS-GUEST-READY/, 300_000);
  const bootMs = Date.now() - t0;
  await new Promise((res) => setTimeout(res, 3000));
  const rss = rssKiB(t.runnerPid(domain.uuid) ?? 0);
  // 20000 iterations of a busybox ash loop, timed by the guest's own clock (/proc/uptime, 10 ms).
  // Short lines: one long command line came out garbled on v86's serial console.
  await serial.sh('f(){ i=0;while [ $i -lt 20000 ];do i=$((i+1));done;}');
  const out = await serial.sh('read a b </proc/uptime;f;read c d </proc/uptime;echo L$a:$c', 300_000);
  const m = /L([\d.]+):([\d.]+)/.exec(out);
  const loopMs = m ? Math.round((Number(m[2]) - Number(m[1])) * 1000) : NaN;
  await t.client.call('domain.destroy', { domain: name });
  return { bootMs, loopMs, rssKiB: rss };
}

async function qemuBench(): Promise<string> {
  const skip = engineSkip('qemu');
  if (skip) return `${QEMU_HEADING}\n\n${skip}\n`;
  const t = await TestHost.start();
  const runs: Record<LocalEngine, { bootMs: number; loopMs: number; rssKiB: number }[]> = { v86: [], qemu: [] };
  try {
    for (let i = 0; i < RUNS; i++) {
      for (const engine of ['v86', 'qemu'] as const) runs[engine].push(await engineRun(t, engine, `q-${engine}-${i}`));
    }
  } finally {
    await t.stop();
  }
  const m = (engine: LocalEngine, k: 'bootMs' | 'loopMs' | 'rssKiB'): number => median(runs[engine].map((r) => r[k]));
  const guestKiB = 128 * 1024;
  return [
    QEMU_HEADING,
    '',
    `Measured by \`npm run bench -- qemu\` on ${new Date().toISOString().slice(0, 10)}: the i686 PV sample (128 MiB) through Domus on each engine, interleaved, median of ${RUNS}. QEMU ${findQemuVersion()} with TCG (KVM is not usable on this host, see host.connections).`,
    '',
    '| what | v86 | QEMU (TCG) | QEMU / v86 |',
    '|---|---|---|---|',
    `| cold boot to DOMUS-GUEST-READY (start call → banner) | ${(m('v86', 'bootMs') / 1000).toFixed(2)} s | ${(m('qemu', 'bootMs') / 1000).toFixed(2)} s | ${(m('qemu', 'bootMs') / m('v86', 'bootMs')).toFixed(2)} |`,
    `| guest CPU: busybox ash loop of 20000 iterations, guest clock | ${m('v86', 'loopMs')} ms | ${m('qemu', 'loopMs')} ms | ${(m('qemu', 'loopMs') / m('v86', 'loopMs')).toFixed(2)} |`,
    `| engine process RSS 3 s after boot | ${(m('v86', 'rssKiB') / 1024).toFixed(0)} MiB | ${(m('qemu', 'rssKiB') / 1024).toFixed(0)} MiB | ${(m('qemu', 'rssKiB') / m('v86', 'rssKiB')).toFixed(2)} |`,
    `| RSS beyond the guest's 128 MiB RAM | ${((m('v86', 'rssKiB') - guestKiB) / 1024).toFixed(0)} MiB | ${((m('qemu', 'rssKiB') - guestKiB) / 1024).toFixed(0)} MiB | |`,
    '',
    `Raw (boot ms / loop ms / RSS MiB): v86 ${runs.v86.map((r) => `${r.bootMs}/${r.loopMs}/${(r.rssKiB / 1024).toFixed(0)}`).join(', ')}; QEMU ${runs.qemu.map((r) => `${r.bootMs}/${r.loopMs}/${(r.rssKiB / 1024).toFixed(0)}`).join(', ')}. QEMU's RSS counts only guest pages touched so far, so "beyond RAM" can be negative for it.`,
    '',
  ].join('\n');
}

function findQemuVersion(): string {
  return findQemu().version ?? 'unknown';
}

/** The host and management-layer figures: the report's head, everything before its first '## '. */
async function coreBench(): Promise<string> {
  const t = await TestHost.start();
  const bare: number[] = [];
  const domus: number[] = [];
  const runnerRss: number[] = [];
  let hostRssIdle = 0;
  let hostRssWithGuests = 0;
  let trace: { without: number; withWatcher: number } | undefined;
  let reattachMs: number | undefined;
  try {
    hostRssIdle = rssKiB(t.daemonPid());
    if (parts.has('boot')) {
      // Interleaved so that machine load hits both sides alike.
      for (let i = 0; i < RUNS; i++) {
        bare.push(await bareBoot());
        const r = await domusBoot(t, `bench-${i}`);
        domus.push(r.ms);
        await new Promise((res) => setTimeout(res, 3000));
        if (processAlive(r.runnerPid)) runnerRss.push(rssKiB(r.runnerPid));
      }
      hostRssWithGuests = rssKiB(t.daemonPid());
      for (let i = 0; i < RUNS; i++) await t.client.call('domain.destroy', { domain: `bench-${i}` });
    }
    if (parts.has('trace')) trace = await traceCost(t);
    if (parts.has('reattach')) reattachMs = await reattachFive(t);
  } finally {
    await t.stop();
  }
  const rows: string[] = [];
  if (bare.length) {
    const b = median(bare);
    const d = median(domus);
    rows.push(
      `| cold boot to DOMUS-GUEST-READY, PV sample, median of ${RUNS} | bare v86 in Node: ${(b / 1000).toFixed(2)} s | Domus (host API → runner): ${(d / 1000).toFixed(2)} s | Domus / bare = ${(d / b).toFixed(2)} |`,
      `| runner RSS per running 128 MiB guest (3 s after boot) | — | median ${(median(runnerRss) / 1024).toFixed(0)} MiB (all: ${runnerRss.map((k) => (k / 1024).toFixed(0)).join(', ')}) | |`,
      `| host (domusd) RSS | idle: ${(hostRssIdle / 1024).toFixed(0)} MiB | with ${RUNS} guests running: ${(hostRssWithGuests / 1024).toFixed(0)} MiB | ${((hostRssWithGuests - hostRssIdle) / 1024 / RUNS).toFixed(1)} MiB per guest |`,
    );
  }
  if (trace) {
    const ns = unwatchedRecordNs();
    const callNs = 1e9 / trace.without;
    rows.push(
      `| one trace record when nobody watches (in-process, 10^6 records) vs one API call | API call: ${(callNs / 1000).toFixed(0)} µs | trace record: ${ns.toFixed(0)} ns | ${((ns / callNs) * 100).toFixed(3)} % of a call |`,
    );
    rows.push(
      `| live trace cost: domain.info calls/s over the unix socket, median of 4 rounds of 2000 | nobody watching: ${trace.without.toFixed(0)}/s | one trace watcher: ${trace.withWatcher.toFixed(0)}/s | watched / unwatched = ${(trace.withWatcher / trace.without).toFixed(2)} |`,
    );
  }
  if (reattachMs !== undefined) {
    rows.push(`| re-attach after SIGKILL of the host, 5 running guests | — | new host up and listing all 5 running: ${reattachMs.toFixed(0)} ms | |`);
  }
  const report = [
    '# Benchmarks',
    '',
    `Measured by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}. Each row is one run, side by side.`,
    '',
    '| what | anchor | Domus | ratio |',
    '|---|---|---|---|',
    ...rows,
    '',
    bare.length ? `Raw boot times (ms): bare ${bare.join(', ')}; Domus ${domus.join(', ')}.\n` : '',
  ].join('\n');
  return report;
}

async function main(): Promise<void> {
  const file = path.join(APP_ROOT, 'docs', 'benchmarks.md');
  let report = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# Benchmarks\n';
  // Only the parts that ran replace their figures; the rest of the file stays as it was.
  if (['boot', 'trace', 'reattach'].some((p) => parts.has(p))) {
    const head = await coreBench();
    process.stdout.write(head);
    const rest = report.indexOf('\n## ');
    report = head.trimEnd() + '\n' + (rest < 0 ? '' : report.slice(rest));
  }
  if (parts.has('console')) {
    const section = await consoleBench();
    process.stdout.write(section);
    report = withSection(report, CONSOLE_HEADING, section);
  }
  if (parts.has('qemu')) {
    const section = await qemuBench();
    process.stdout.write(section);
    report = withSection(report, QEMU_HEADING, section);
  }
  if (parts.has('libvirt')) {
    const section = await libvirtBench();
    process.stdout.write(section);
    report = withSection(report, LIBVIRT_HEADING, section);
  }
  if (parts.has('net')) {
    const section = await netBench();
    process.stdout.write(section);
    report = withSection(report, NET_HEADING, section);
  }
  if (parts.has('migrate')) {
    const section = await migrateBench();
    process.stdout.write(section);
    report = withSection(report, MIGRATE_HEADING, section);
  }
  if (parts.has('engine')) {
    const section = await engineBench();
    process.stdout.write(section);
    report = withSection(report, ENGINE_HEADING, section);
  }
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, report);
}

void main();
