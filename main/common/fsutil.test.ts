import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { FileWriteError, processAlive, systemErrorText, writeFileAtomic } from './fsutil.js';
import { fillUp, mountTmpfs } from '../testing/tmpfs.js';

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
    assert.throws(
      () => writeFileAtomic(target, 'new'),
      (err: FileWriteError) => ['EISDIR', 'ENOTEMPTY', 'EEXIST'].includes(err.code!) && err.message.startsWith(`cannot write '${target}': `),
    );
    assert.deepEqual(fs.readdirSync(dir), ['taken']);
    assert.equal(fs.readFileSync(path.join(target, 'inside'), 'utf8'), 'old');
    fs.rmSync(dir, { recursive: true });
  });

  it('on a full disk keeps the old content, leaves no temp file and names the file', (t) => {
    const fs2m = mountTmpfs('domus-atomic-full-', '2m');
    if (typeof fs2m === 'string') return t.skip(fs2m);
    try {
      const file = path.join(fs2m.dir, 'def.xml');
      writeFileAtomic(file, 'old content');
      fillUp(fs2m.dir);
      assert.throws(
        () => writeFileAtomic(file, 'new content, longer'.repeat(100)),
        (err: FileWriteError) => err.code === 'ENOSPC' && err.message === `cannot write '${file}': No space left on device`,
      );
      assert.equal(fs.readFileSync(file, 'utf8'), 'old content');
      assert.deepEqual(fs.readdirSync(fs2m.dir).sort(), ['def.xml', 'filler']);
    } finally {
      fs2m.unmount();
    }
  });
});

describe('systemErrorText', () => {
  it("words a failed call as strerror does; other errors keep their message", () => {
    const err = (() => {
      try {
        fs.readFileSync('/nonexistent/domus');
      } catch (e) {
        return e;
      }
    })();
    assert.equal(systemErrorText(err), 'No such file or directory');
    assert.equal(systemErrorText(new Error('plain')), 'plain');
  });
});

describe('processAlive', () => {
  it('tells a live pid from a dead one', () => {
    assert.equal(processAlive(process.pid), true);
    assert.equal(processAlive(2 ** 22 + 12345), false);
  });
});
