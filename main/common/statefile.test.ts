// The state-file format without an emulator: round trip, and the clear refusals of damaged or foreign
// files (which are never modified).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { checkPayloadDigest, headBytes, openStateFile, readStateFile, readStateHeader, STATE_ENGINE_VERSION, writeStateFile, type StateHeader } from './statefile.js';

const fields: Omit<StateHeader, 'format' | 'payloadBytes' | 'payloadSha256'> = {
  engine: 'v86',
  engineVersion: STATE_ENGINE_VERSION,
  name: 'state-test',
  uuid: '6b1f7c1e-0000-4000-8000-0000000000aa',
  domainXml: "<domain type='v86'><name>state-test</name></domain>",
  createdAt: new Date().toISOString(),
  machine: { memoryBytes: 128 << 20, vgaMemoryBytes: 8 << 20, acpi: true, balloon: true, guestAgent: true, disks: { hda: 16 << 20 } },
  guest: { agentConnected: true },
};

const digest = (file: string) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** The payload as an engine reads it: openStateFile, its descriptor, checkPayloadDigest. */
function readPayload(file: string): Buffer {
  const { fd, header, payloadOffset } = openStateFile(file);
  try {
    const payload = Buffer.alloc(header.payloadBytes);
    if (fs.readSync(fd, payload, 0, payload.length, payloadOffset) < payload.length) throw new Error('short read');
    checkPayloadDigest(file, header, crypto.createHash('sha256').update(payload).digest('hex'));
    return payload;
  } finally {
    fs.closeSync(fd);
  }
}

describe('state file', () => {
  let dir: string;
  let good: string;
  const payload = crypto.randomBytes(9 * 1024 * 1024 + 123);

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-state-'));
    good = path.join(dir, 'good.state');
    const progress: number[] = [];
    const r = await writeStateFile(good, fields, payload, { onProgress: (done, total) => progress.push(done / total) });
    assert.equal(r.bytes, fs.statSync(good).size);
    assert.equal(r.checksum, crypto.createHash('sha256').update(payload).digest('hex'));
    assert.ok(progress.length >= 3 && progress.at(-1) === 1, `progress ${progress}`);
    assert.equal(fs.statSync(good).mode & 0o777, 0o600);
    assert.deepEqual(fs.readdirSync(dir), ['good.state'], 'no temporary file left');
  });

  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('round trip: header and payload', () => {
    const header = readStateHeader(good);
    assert.deepEqual({ ...header, format: undefined, payloadBytes: undefined, payloadSha256: undefined }, {
      ...fields,
      format: undefined,
      payloadBytes: undefined,
      payloadSha256: undefined,
    });
    assert.equal(header.format, 2);
    assert.equal(header.payloadBytes, payload.length);
    assert.deepEqual(openStateFile(good).header, header);
    assert.ok(readPayload(good).equals(payload));
  });

  test('a taken payload (views on guest memory) is written as it was when taken, as the concatenation of its pieces', async () => {
    const pieces = [payload.subarray(0, 10), payload.subarray(100, 5000), payload.subarray(7000, 9 << 20)];
    const file = path.join(dir, 'batches.state');
    const whole = Buffer.concat(pieces);
    const live = Buffer.from(payload);
    const views = [live.subarray(0, 10), live.subarray(100, 5000), live.subarray(7000, 9 << 20)];
    let tookAt: number | undefined;
    const r = await writeStateFile(file, fields, {
      take: () => {
        tookAt = fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')).length;
        // What changes the memory once the event loop turns (a NIC frame into a paused guest's RAM)
        // is not in the file.
        setImmediate(() => live.fill(0xff));
        return { bytes: 10 + 4900 + ((9 << 20) - 7000), batches: [views.slice(0, 2), views.slice(2)] };
      },
    });
    assert.equal(tookAt, 1, 'taken once the temporary file is open');
    assert.equal(r.checksum, crypto.createHash('sha256').update(whole).digest('hex'));
    assert.ok(readPayload(file).equals(whole));
    assert.equal(live[200], 0xff);
    await assert.rejects(writeStateFile(path.join(dir, 'short.state'), fields, { take: () => ({ bytes: 11, batches: [pieces.slice(0, 1)] }) }), /the payload is 10 bytes, 11 were announced/);
    await assert.rejects(
      writeStateFile(path.join(dir, 'thrown.state'), fields, {
        take: () => {
          throw new Error('device state too large');
        },
      }),
      /^StateFileError: cannot write state file '.*thrown\.state': device state too large$/,
    );
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith('.') || f.startsWith('short') || f.startsWith('thrown')), []);
  });

  /** Checks that both readers refuse `file` with `message` and leave it as it was. */
  function refusesFile(file: string, message: RegExp): void {
    const before = digest(file);
    assert.throws(() => readStateHeader(file), { name: 'StateFileError', message });
    assert.throws(() => readPayload(file), { name: 'StateFileError', message });
    assert.equal(digest(file), before, 'the file is untouched');
  }

  /** refusesFile on a damaged copy of the good file. */
  function refuses(name: string, damage: (bytes: Buffer) => Buffer, message: RegExp): string {
    const file = path.join(dir, name);
    fs.writeFileSync(file, damage(Buffer.from(fs.readFileSync(good))));
    refusesFile(file, message);
    return file;
  }

  const headerEnd = (bytes: Buffer) => 48 + bytes.readUInt32LE(12);

  test('a flipped payload byte: checksum mismatch, unless the reader leaves the payload to the engine', () => {
    const file = refuses('flipped.state', (b) => ((b[b.length - 1000] ^= 0x01), b), /^state file '.*flipped\.state' is corrupt: checksum mismatch$/);
    assert.equal(readStateHeader(file, undefined, 'unchecked').name, fields.name);
  });

  test('a flipped header byte: header checksum mismatch, whatever the reader', () => {
    const file = refuses('header.state', (b) => ((b[60] ^= 0x20), b), /is corrupt: header checksum mismatch$/);
    assert.throws(() => readStateHeader(file, undefined, 'unchecked'), /is corrupt: header checksum mismatch$/);
  });

  test('truncated in the payload, in the header, in the prefix', () => {
    refuses('trunc1.state', (b) => b.subarray(0, b.length - 1), /^state file '.*trunc1\.state' is truncated$/);
    refuses('trunc2.state', (b) => b.subarray(0, headerEnd(b) - 5), /is truncated$/);
    refuses('trunc3.state', (b) => b.subarray(0, 20), /is truncated$/);
  });

  test('bytes after the payload', () => void refuses('long.state', (b) => Buffer.concat([b, Buffer.alloc(7)]), /is corrupt: 7 unexpected bytes after the payload$/));

  test('not a Domus state file (a raw v86 state, an empty file)', () => {
    refuses('raw.state', (b) => b.subarray(headerEnd(b)), /^state file '.*raw\.state' is not a Domus state file$/);
    refuses('empty.state', () => Buffer.alloc(0), /is not a Domus state file$/);
  });

  test('another engine version, another format version', async () => {
    const other = path.join(dir, 'old-engine.state');
    await writeStateFile(other, { ...fields, engineVersion: '0.5.400' }, payload);
    await writeStateFile(path.join(dir, 'qemu.state'), { ...fields, engine: 'qemu', engineVersion: '8.2.0' }, payload);
    refusesFile(path.join(dir, 'qemu.state'), new RegExp(`was written by engine qemu 8\\.2\\.0, this is v86 ${STATE_ENGINE_VERSION.replace(/\./g, '\\.')}$`));
    refusesFile(other, new RegExp(`was written by engine v86 0\\.5\\.400, this is ${STATE_ENGINE_VERSION.replace(/\./g, '\\.')}$`));
    refuses('format9.state', (b) => (b.writeUInt32LE(9, 8), b), /has format version 9; this Domus reads version 2$/);
  });

  test('format 1: its QEMU states still read, its v86 states are refused by name', () => {
    /** A copy of `file` as format 1 wrote it: the same bytes under a version-1 prefix and header. */
    const asFormat1 = (file: string, name: string): string => {
      const bytes = fs.readFileSync(file);
      const end = headerEnd(bytes);
      const header = { ...(JSON.parse(bytes.subarray(48, end).toString('utf8')) as StateHeader), format: 1 };
      const head = headBytes(header);
      head.writeUInt32LE(1, 8);
      head.subarray(16, 48).set(crypto.createHash('sha256').update(head.subarray(48)).digest());
      const out = path.join(dir, name);
      fs.writeFileSync(out, Buffer.concat([head, bytes.subarray(end)]));
      return out;
    };
    const qemu = asFormat1(path.join(dir, 'qemu.state'), 'qemu1.state');
    assert.equal(readStateFile(qemu, { engine: 'qemu', version: '8.2.0' }).header.format, 1);
    refusesFile(asFormat1(good, 'v86-1.state'), /has format version 1, from an older Domus whose v86 states this one cannot restore$/);
  });

  test('a missing file, a directory', () => {
    assert.throws(() => readStateHeader(path.join(dir, 'nope')), { message: /^cannot read state file '.*nope': ENOENT$/ });
    assert.throws(() => readStateHeader(dir), { message: /^state file '.*' is a directory, not a regular file$/ });
  });

  test('an aborted write leaves nothing behind and keeps an existing file', async () => {
    const target = path.join(dir, 'aborted.state');
    const ac = new AbortController();
    await assert.rejects(
      writeStateFile(target, fields, payload, { signal: ac.signal, onProgress: (done) => done > 4 << 20 && ac.abort() }),
      { name: 'StateWriteAborted', message: 'save aborted' },
    );
    assert.ok(!fs.existsSync(target));
    const before = digest(good);
    const ac2 = new AbortController();
    ac2.abort();
    await assert.rejects(writeStateFile(good, fields, Buffer.alloc(10), { signal: ac2.signal }), { message: 'save aborted' });
    assert.equal(digest(good), before);
    assert.deepEqual(fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
  });

  test('an unwritable directory: a clear error', async () => {
    await assert.rejects(writeStateFile('/nonexistent-dir/x.state', fields, payload), {
      message: "cannot write state file '/nonexistent-dir/x.state': No such file or directory",
    });
  });
});
