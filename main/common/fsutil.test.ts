import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { FileWriteError, ensurePrivateDir, openPrivateLog, processAlive, systemErrorText, tightenTree, writeFileAtomic } from './fsutil.js';
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

describe('owner-only files', () => {
  it('writeFileAtomic makes 0600 files unless told otherwise', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-atomic-'));
    writeFileAtomic(path.join(dir, 'secret.xml'), 'x');
    writeFileAtomic(path.join(dir, 'public.json'), 'x', 0o644);
    assert.equal(fs.statSync(path.join(dir, 'secret.xml')).mode & 0o777, 0o600);
    assert.equal(fs.statSync(path.join(dir, 'public.json')).mode & 0o777, 0o644 & ~process.umask());
    fs.rmSync(dir, { recursive: true });
  });

  it('tightenTree takes group/other bits off a tree without following symlinks', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-tighten-'));
    const outside = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-outside-'));
    fs.chmodSync(outside, 0o755);
    fs.mkdirSync(path.join(dir, 'sub'), { mode: 0o755 });
    fs.writeFileSync(path.join(dir, 'sub', 'a.state'), 'ram');
    fs.chmodSync(path.join(dir, 'sub'), 0o755);
    fs.chmodSync(path.join(dir, 'sub', 'a.state'), 0o664);
    fs.symlinkSync(outside, path.join(dir, 'link'));
    const changed = tightenTree(dir);
    assert.deepEqual(changed.sort(), [path.join(dir, 'sub'), path.join(dir, 'sub', 'a.state')].sort());
    assert.equal(fs.statSync(path.join(dir, 'sub')).mode & 0o777, 0o700);
    assert.equal(fs.statSync(path.join(dir, 'sub', 'a.state')).mode & 0o777, 0o600);
    assert.equal(fs.statSync(outside).mode & 0o777, 0o755, 'the symlink target is left alone');
    fs.rmSync(dir, { recursive: true });
    fs.rmSync(outside, { recursive: true });
  });

  it('ensurePrivateDir and openPrivateLog tighten what exists', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-private-'));
    fs.chmodSync(dir, 0o755);
    ensurePrivateDir(dir);
    ensurePrivateDir(path.join(dir, 'a', 'b'));
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
    assert.equal(fs.statSync(path.join(dir, 'a')).mode & 0o777, 0o700);
    const log = path.join(dir, 'x.log');
    fs.writeFileSync(log, 'old\n');
    fs.chmodSync(log, 0o644);
    const fd = openPrivateLog(log);
    fs.writeSync(fd, 'new\n');
    fs.closeSync(fd);
    assert.equal(fs.statSync(log).mode & 0o777, 0o600);
    assert.equal(fs.readFileSync(log, 'utf8'), 'old\nnew\n');
    fs.rmSync(dir, { recursive: true });
  });
});

describe('processAlive', () => {
  it('tells a live pid from a dead one', () => {
    assert.equal(processAlive(process.pid), true);
    assert.equal(processAlive(2 ** 22 + 12345), false);
  });
  it('takes no pid yet (0) or a negative one for a process: kill(2) would signal a process group', () => {
    assert.equal(processAlive(0), false);
    assert.equal(processAlive(-1), false);
    assert.equal(processAlive(Number.NaN), false);
  });
});
