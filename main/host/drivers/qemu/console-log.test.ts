// The serial log as QEMU writes it (another process appending) read while it grows: every
// byte arrives once and in order, the read part is freed on disk, and the tail is what a
// re-attaching host gets.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { until } from '../../../testing/harness.js';
import { ConsoleLog } from './console-log.js';

const LINES = 600_000;

describe('QEMU serial log reader', () => {
  it('reads everything an appending writer writes, in order, while punching the read part out', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-console-log-'));
    const file = path.join(dir, 'console.log');
    fs.writeFileSync(file, '');
    const chunks: Buffer[] = [];
    const reader = new ConsoleLog(file, 0, (d) => chunks.push(d), { keepBytes: 64 * 1024, trimBytes: 256 * 1024 });
    reader.start();
    // A separate process appends in bursts, so that reads and punches happen while it writes.
    const writer = spawn('sh', ['-c', `i=0; while [ $i -lt ${LINES} ]; do seq $((i + 1)) $((i + 20000)) >> "$1"; i=$((i + 20000)); sleep 0.02; done`, 'sh', file], { stdio: 'ignore' });
    const code = await new Promise<number | null>((resolve) => writer.on('exit', resolve));
    assert.equal(code, 0);
    const size = fs.statSync(file).size;
    await until(() => chunks.reduce((n, c) => n + c.length, 0) >= size, 10_000, 'the reader to catch up');
    reader.stop();

    const text = Buffer.concat(chunks).toString('latin1');
    const numbers = text.split('\n').slice(0, -1).map(Number);
    assert.equal(numbers.length, LINES, 'every line once');
    assert.ok(numbers.every((n, i) => n === i + 1), 'in order');
    // The last punch runs as a child process: give it a moment.
    const onDisk = () => fs.statSync(file).blocks * 512;
    await until(() => onDisk() <= 64 * 1024 + 2 * 256 * 1024, 5000, `the read part to be freed (${onDisk()} bytes on disk)`);
    console.log(`# serial log: ${size} bytes written, ${onDisk()} bytes on disk after reading`);
    assert.equal(fs.statSync(file).size, size, 'the file keeps its size: QEMU appends and offsets stay valid');
    assert.equal(ConsoleLog.tail(file, size, 64 * 1024).toString('latin1'), text.slice(-64 * 1024), 'the kept tail is intact');
    fs.rmSync(dir, { recursive: true });
  });

  it('starts from an offset (re-attach) and hands nothing over twice', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-console-log-'));
    const file = path.join(dir, 'console.log');
    fs.writeFileSync(file, 'seen before\nnew\n');
    const chunks: Buffer[] = [];
    const reader = new ConsoleLog(file, 'seen before\n'.length, (d) => chunks.push(d), { keepBytes: 1024, trimBytes: 4096 });
    reader.start();
    fs.appendFileSync(file, 'more\n');
    reader.read();
    reader.stop();
    assert.equal(Buffer.concat(chunks).toString(), 'new\nmore\n');
    assert.equal(ConsoleLog.tail(file, 12, 5).toString(), 'fore\n');
    assert.equal(ConsoleLog.tail(path.join(dir, 'absent'), 10, 5).length, 0);
    fs.rmSync(dir, { recursive: true });
  });
});
