import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { processAlive, writeFileAtomic } from './fsutil.js';

describe('writeFileAtomic', () => {
  it('replaces content whole and leaves no temp file', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-atomic-'));
    const file = path.join(dir, 'a.xml');
    writeFileAtomic(file, 'one');
    writeFileAtomic(file, 'two');
    assert.equal(fs.readFileSync(file, 'utf8'), 'two');
    assert.deepEqual(fs.readdirSync(dir), ['a.xml']);
    fs.rmSync(dir, { recursive: true });
  });

  it('keeps the old content and cleans up when the rename fails', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-atomic-'));
    const target = path.join(dir, 'taken');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'inside'), 'old');
    assert.throws(() => writeFileAtomic(target, 'new'), /EISDIR|ENOTEMPTY|EEXIST/);
    assert.deepEqual(fs.readdirSync(dir), ['taken']);
    assert.equal(fs.readFileSync(path.join(target, 'inside'), 'utf8'), 'old');
    fs.rmSync(dir, { recursive: true });
  });
});

describe('processAlive', () => {
  it('tells a live pid from a dead one', () => {
    assert.equal(processAlive(process.pid), true);
    assert.equal(processAlive(2 ** 22 + 12345), false);
  });
});
