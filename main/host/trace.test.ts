// The live trace keeps little and no secrets: VNC passwords are found by parsing the XML, whatever
// its spelling; long strings and big records are capped; the ring has a byte budget; and a daemon
// fed 300 defines of ~1 MB XML stays small.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { TestHost, guest } from '../testing/harness.js';
import { MAX_RING_BYTES, MAX_XML, TraceLog, redactXml } from './trace.js';

describe('VNC passwords in traced XML', () => {
  const spellings: [string, string][] = [
    ['single quotes', `<domain><devices><graphics type='vnc' passwd='hunter2'/></devices></domain>`],
    ['spaces around =', `<domain><devices><graphics type='vnc' passwd = 'hunter2'/></devices></domain>`],
    ['double quotes holding an apostrophe', `<domain><devices><graphics type="vnc" passwd="hunter2's"/></devices></domain>`],
    ['single quotes holding a double quote', `<domain><devices><graphics type='vnc' passwd='hunter2"x'/></devices></domain>`],
    ['entities', `<domain><devices><graphics type='vnc' passwd='hun&amp;ter&apos;2&#33;'/></devices></domain>`],
    ['newlines and tabs', `<domain>\n<devices>\n<graphics\n\ttype='vnc'\n\tpasswd\n=\n"hunter2"\n/>\n</devices>\n</domain>`],
    ['a newline inside the value', `<domain><devices><graphics type='vnc' passwd='hun\nter2'/></devices></domain>`],
    ['a listen child and spice too', `<domain><devices><graphics type='spice' passwd='hunter2'><listen type='address'/></graphics><graphics passwd='hunter2' type='vnc'/></devices></domain>`],
  ];
  for (const [what, xml] of spellings) {
    it(`redacts with ${what}`, () => {
      const out = redactXml(xml);
      assert.doesNotMatch(out, /hunter|ter2|&#33;/);
      assert.match(out, /passwd='\*\*\*'/);
      assert.match(out, /type='(vnc|spice)'/, 'the rest of the XML stays readable');
    });
  }

  it('redacts XML that does not parse as a whole', () => {
    for (const bad of [`<domain><graphics passwd='hunter2'></domain>`, `<graphics passwd='hunter2`, `passwd = 'hunter2'`]) {
      const out = redactXml(bad);
      assert.doesNotMatch(out, /hunter2/);
      assert.match(out, /does not parse, redacted/);
    }
  });

  it('a traced define shows the XML with the password redacted', () => {
    const trace = new TraceLog();
    const xml = `<domain type="v86"><name>t</name><devices><graphics type="vnc" passwd="it's"/></devices></domain>`;
    trace.request({ time: 0, op: 'domain.define', args: { xml }, ok: true, result: { domain: { name: 't', state: 'shutoff', reason: 'unknown' } } });
    const [rec] = trace.recent();
    const text = JSON.stringify(rec.args);
    assert.doesNotMatch(text, /it's|it&apos;s/);
    assert.match(text, /passwd='\*\*\*'/);
    assert.match(text, /<name>t<\/name>/);
  });
});

describe('what the trace keeps', () => {
  it('caps strings with their size, drops long XML, leaves the caller arguments alone', () => {
    const trace = new TraceLog();
    const long = 'é'.repeat(10_000);
    const xml = `<domain><description>${'x'.repeat(MAX_XML)}</description><devices><graphics passwd='hunter2'/></devices></domain>`;
    const args = { xml, note: long, password: 'hunter2', data: 'aGVsbG8=' };
    trace.request({ time: 0, op: 'domain.define', args, ok: false, error: 'nope' });
    const [rec] = trace.recent();
    const kept = rec.args as Record<string, string>;
    assert.match(kept.note, /^é{200}… \(20000 bytes\)$/);
    assert.equal(kept.xml, `<XML of ${Buffer.byteLength(xml)} bytes, too long to keep>`);
    assert.equal(kept.password, '***');
    assert.equal(kept.data, '<8 chars>');
    assert.equal(args.xml, xml, 'the caller keeps its arguments');
  });

  it('replaces oversized arguments and keeps the ring within its byte budget', () => {
    const trace = new TraceLog();
    const wide = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, Array.from({ length: 20 }, () => 'y'.repeat(300))]));
    trace.request({ time: 0, op: 'host.wide', args: wide, ok: true });
    assert.match(String(trace.recent()[0].args), /^<arguments of \d+ bytes, too large to keep>$/);
    for (let i = 0; i < 2000; i++) {
      trace.request({ time: i, op: 'domain.define', args: { xml: `<domain><name>d${i}</name><description>${'z'.repeat(3800)}</description></domain>` }, ok: true });
    }
    const { records, bytes } = trace.size;
    assert.ok(bytes <= MAX_RING_BYTES, `${bytes} bytes kept`);
    assert.ok(records < 2000, `${records} records: the oldest went for the byte budget`);
    const recent = trace.recent();
    assert.match(JSON.stringify(recent.at(-1)!.args), /d1999/);
    assert.equal(recent.length, records);
  });
});

describe('trace memory in the daemon', { timeout: 1_800_000 }, () => {
  let t: TestHost;
  before(async () => {
    t = await TestHost.start();
  });
  after(async () => {
    await t?.stop();
  });

  const rssMiB = (pid: number): number => {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return Number(m![1]) / 1024;
  };

  // Each define makes megabytes of garbage (the message, its parse, the XML tree) that V8 collects
  // when it likes: RSS swings by ~100 MiB without any of it being kept. Keeping the XML took
  // domusd from 67 to 960 MiB.
  it('300 defines of ~1 MB XML leave domusd under 300 MiB', async () => {
    const pid = t.daemonPid();
    const xmlOf = (i: number): string => {
      const head = `<domain type='v86'><name>big${i % 3}</name><uuid>6d9b1c4e-0000-4000-8000-00000000000${i % 3}</uuid><memory unit='MiB'>128</memory><os><type>hvm</type><kernel>${guest('vmlinuz')}</kernel></os><devices><graphics type='vnc' passwd='hunter2'/></devices><description>`;
      const tail = `</description></domain>`;
      return head + `call ${i} `.padEnd(1_000_000 - head.length - tail.length, 'lorem ipsum ') + tail;
    };
    assert.ok(xmlOf(0).length > 999_000 && xmlOf(0).length < 1 << 20);
    const before = rssMiB(pid);
    let peak = before;
    for (let i = 0; i < 300; i++) {
      await t.client.call('domain.define', { xml: xmlOf(i) });
      peak = Math.max(peak, rssMiB(pid));
    }
    const afterDefines = rssMiB(pid);
    const backlog = await t.client.call('trace.subscribe', { backlog: true });
    await t.client.call('trace.unsubscribe', {});
    const defines = backlog.backlog.filter((r) => r.op === 'domain.define');
    assert.ok(defines.length >= 300, `${defines.length} define records kept`);
    assert.doesNotMatch(JSON.stringify(backlog), /hunter2/);
    const figures = `domusd RSS: ${before.toFixed(0)} MiB before, ${afterDefines.toFixed(0)} MiB after 300 defines of 1 MB XML (peak ${peak.toFixed(0)} MiB)`;
    console.log(figures);
    assert.ok(afterDefines < 300 && peak < 400, figures);
  });
});
