// The host boundary: every message is validated; malformed or unknown ones get a clear error
// reply and change nothing. Definitions are persisted atomically and survive a new host.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { ReplyEnvelope } from '../../../shared/api.js';
import { ApiSession, type HostServices } from './session.js';
import { Host } from '../host.js';
import { hostPaths } from '../../common/paths.js';
import { killLeftovers } from '../../testing/harness.js';

const XML = `<domain type="v86">
  <name>unit</name>
  <memory unit="MiB">128</memory>
  <os><type arch="i686">hvm</type><kernel>/nonexistent/vmlinuz</kernel></os>
  <metadata><my:note xmlns:my="urn:example">kept</my:note></metadata>
  <devices><serial type="pty"/></devices>
</domain>`;

describe('API session', () => {
  let home: string;
  let host: Host;
  let session: ApiSession;
  const replies: ReplyEnvelope[] = [];
  const call = async (msg: unknown): Promise<ReplyEnvelope> => {
    await session.receiveText(typeof msg === 'string' ? msg : JSON.stringify(msg));
    return replies[replies.length - 1];
  };
  const errorOf = (r: ReplyEnvelope): { code: string; message: string } => {
    assert.equal(r.ok, false, `expected an error reply, got ${JSON.stringify(r)}`);
    return (r as Extract<ReplyEnvelope, { ok: false }>).error;
  };

  before(async () => {
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-unit-'));
    host = new Host(hostPaths(home));
    await host.init();
    const svc: HostServices = { host, webShellUrl: async () => 'unused', stop: () => undefined };
    session = new ApiSession(svc, { kind: 'test', label: 'unit test' }, (text) => {
      const msg = JSON.parse(text) as ReplyEnvelope | { type: 'event' };
      if (msg.type === 'reply') replies.push(msg);
    });
  });
  after(() => {
    session.close();
    // The host's default network started a switch process, which outlives its host by design.
    killLeftovers(hostPaths(home));
  });

  it('refuses malformed JSON, bad envelopes, unknown methods and bad params', async () => {
    assert.deepEqual(errorOf(await call('{nope')), { code: 'RPC', message: 'RPC error: malformed message: not valid JSON' });
    assert.match(errorOf(await call({ type: 'request', id: 1 })).message, /malformed request: method/);
    assert.match(errorOf(await call({ type: 'request', id: 2, method: 'domain.list', extra: 1 })).message, /malformed request/);
    assert.deepEqual(errorOf(await call({ type: 'request', id: 3, method: 'domain.frobnicate', params: {} })), {
      code: 'NO_SUPPORT',
      message: "this function is not supported by the connection driver: unknown method 'domain.frobnicate'",
    });
    const bad = errorOf(await call({ type: 'request', id: 4, method: 'domain.start', params: { domain: 7 } }));
    assert.equal(bad.code, 'INVALID_ARG');
    assert.match(bad.message, /^invalid argument: domain.start: domain:/);
    const extra = errorOf(await call({ type: 'request', id: 5, method: 'domain.start', params: { domain: 'x', force: true } }));
    assert.match(extra.message, /force/);
    const spec = errorOf(
      await call({ type: 'request', id: 6, method: 'domain.create', params: { spec: { name: 'a/b', memoryMiB: 8, boot: { kind: 'pv', kernel: '' } } } }),
    );
    assert.match(spec.message, /spec\.name: name may hold/);
    assert.match(spec.message, /spec\.memoryMiB: memory must be at least 16 MiB/);
    assert.equal(host.list().length, 0, 'nothing was created');
    assert.equal(fs.readdirSync(hostPaths(home).domains).length, 0);
  });

  it('an exception nobody anticipated (a bug) is INTERNAL_ERROR, the only path to that class', async () => {
    const list = host.list;
    host.list = () => {
      throw new TypeError("Cannot read properties of undefined (reading 'uuid')");
    };
    try {
      assert.deepEqual(errorOf(await call({ type: 'request', id: 7, method: 'domain.list', params: {} })), {
        code: 'INTERNAL_ERROR',
        message: "internal error: Cannot read properties of undefined (reading 'uuid')",
      });
    } finally {
      host.list = list;
    }
  });

  it('reports unknown domains and invalid XML clearly', async () => {
    assert.deepEqual(errorOf(await call({ type: 'request', id: 10, method: 'domain.start', params: { domain: 'ghost' } })), {
      code: 'NO_DOMAIN',
      message: "Domain not found: no domain with matching name 'ghost'",
    });
    const xml = errorOf(await call({ type: 'request', id: 11, method: 'domain.define', params: { xml: '<domain><name>x</name>' } }));
    assert.equal(xml.code, 'XML_ERROR');
    assert.match(xml.message, /^XML error: /);
    assert.equal(host.list().length, 0);
  });

  it('defines a domain, keeps unknown elements, and a new host loads it', async () => {
    const r = await call({ type: 'request', id: 20, method: 'domain.define', params: { xml: XML } });
    assert.equal(r.ok, true);
    const dump = host.xml('unit').xml;
    assert.match(dump, /<uuid>[0-9a-f-]{36}<\/uuid>/);
    assert.match(dump, /<my:note xmlns:my='urn:example'>kept<\/my:note>/);
    const files = fs.readdirSync(hostPaths(home).domains);
    assert.equal(files.length, 1, `one definition file and no temp files: ${files.join(', ')}`);
    const second = new Host(hostPaths(home));
    await second.init();
    assert.equal(second.xml('unit').xml, dump);
  });

  it('fails to start with a missing kernel, naming the file, and stays shut off', async () => {
    const e = errorOf(await call({ type: 'request', id: 30, method: 'domain.start', params: { domain: 'unit' } }));
    assert.equal(e.code, 'OPERATION_FAILED');
    assert.equal(e.message, "operation failed: cannot access kernel '/nonexistent/vmlinuz': No such file or directory");
    assert.equal(host.info('unit').state, 'shutoff');
  });

  it('fails at once, naming the package, when SeaBIOS is missing', async () => {
    process.env.DOMUS_FIRMWARE_DIR = path.join(home, 'no-firmware-here');
    try {
      const t0 = Date.now();
      const e = errorOf(await call({ type: 'request', id: 31, method: 'domain.start', params: { domain: 'unit' } }));
      assert.ok(Date.now() - t0 < 1000);
      assert.match(e.message, /^operation failed: SeaBIOS not found: install Debian's package 'seabios'/);
      assert.match(host.status().firmware.problem ?? '', /SeaBIOS not found/);
    } finally {
      delete process.env.DOMUS_FIRMWARE_DIR;
    }
  });
});
