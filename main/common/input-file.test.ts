import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeSpecialFiles } from '../testing/special-files.js';
import { checkInputFile, InputFileError, openInputFile } from './input-file.js';

describe('openInputFile', () => {
  let dir: string;
  let special: Awaited<ReturnType<typeof makeSpecialFiles>>;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-input-'));
    special = await makeSpecialFiles(dir);
  });
  after(() => {
    special.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses FIFOs, devices, directories, sockets and links to them at once, naming path and kind', () => {
    for (const [file, kind] of special.cases) {
      for (const attempt of [() => checkInputFile(file), () => openInputFile(file), () => openInputFile(file, { writable: true })]) {
        const t0 = Date.now();
        assert.throws(attempt, (err: unknown) => {
          assert.ok(err instanceof InputFileError);
          assert.ok(err.message.startsWith(`'${file}' is `), err.message);
          assert.match(err.message, kind);
          assert.ok(err.kind);
          return true;
        });
        assert.ok(Date.now() - t0 < 1000, `${file} took ${Date.now() - t0} ms`);
      }
    }
  });

  it('says what block devices are when they are not wanted, and names the missing file', () => {
    assert.throws(() => openInputFile(path.join(dir, 'fifo.img'), { blockDevices: true }), /not a regular file or a block device$/);
    assert.throws(() => openInputFile(path.join(dir, 'nope.img')), (err: unknown) => {
      assert.ok(err instanceof InputFileError);
      assert.equal(err.code, 'ENOENT');
      assert.equal(err.message, `'${path.join(dir, 'nope.img')}': No such file or directory`);
      return true;
    });
  });

  it('opens regular files, directly or through a link, for reading and writing', () => {
    const file = path.join(dir, 'disk.img');
    fs.writeFileSync(file, 'abcd');
    fs.symlinkSync(file, path.join(dir, 'link.img'));
    for (const name of ['disk.img', 'link.img']) {
      const { fd, stats } = openInputFile(path.join(dir, name), { writable: true });
      assert.equal(stats.size, 4);
      fs.writeSync(fd, 'x', 0);
      const buf = Buffer.alloc(4);
      fs.readSync(fd, buf, 0, 4, 0);
      fs.closeSync(fd);
      assert.equal(buf.toString(), 'xbcd');
    }
  });
});
