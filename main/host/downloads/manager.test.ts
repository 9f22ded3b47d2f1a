// The download manager against a local HTTP server: verified success, checksum mismatch, cancel,
// server error, resume after a dropped connection, checksum files; never a half file in the pool.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { CatalogueEntry } from '../../../shared/api.js';
import { startImageServer, type ImageServer } from '../../testing/image-server.js';
import { hashFromSums, loadCatalogue } from './catalogue.js';
import { DownloadManager } from './manager.js';

describe('download manager', () => {
  let server: ImageServer;
  let home: string;
  let pool: string;
  let downloads: string;
  let entries: CatalogueEntry[];
  let manager: DownloadManager;

  before(async () => {
    server = await startImageServer();
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-dl-'));
    pool = path.join(home, 'images');
    downloads = path.join(home, 'downloads');
    entries = [
      server.entry('ok', '/ok/image.iso'),
      server.entry('bad', '/ok/bad.iso', { sha256: 'f'.repeat(64) }),
      server.entry('slow', '/slow/slow.iso'),
      server.entry('error', '/error/error.iso'),
      server.entry('drop', '/drop/drop.iso'),
      server.entry('sums', '/ok/image.iso', { sha256: undefined, sha256Url: `${server.url}/sums/SHA256SUMS` }),
    ];
    manager = new DownloadManager({ downloadsDir: downloads, poolDir: () => pool, catalogue: async () => ({ entries }), retryDelayMs: () => 100 });
  });
  after(async () => {
    await server.close();
    fs.rmSync(home, { recursive: true, force: true });
  });

  const poolFiles = (): string[] => (fs.existsSync(pool) ? fs.readdirSync(pool) : []);
  const partFiles = (): string[] => fs.readdirSync(downloads);

  it('downloads, verifies and moves the image into the pool, with progress events', async () => {
    const events: string[] = [];
    const listener = (d: { status: string; receivedBytes: number }): void => void events.push(`${d.status}:${d.receivedBytes}`);
    manager.on('progress', listener);
    const started = await manager.start('ok');
    assert.equal(started.status, 'running');
    const done = await manager.whenDone(started.id);
    manager.off('progress', listener);
    assert.equal(done.status, 'completed', done.error);
    assert.equal(done.file, path.join(pool, 'image.iso'));
    assert.equal(done.receivedBytes, server.payload.length);
    assert.equal(done.totalBytes, server.payload.length);
    assert.ok(fs.readFileSync(done.file).equals(server.payload));
    assert.deepEqual(partFiles(), []);
    assert.equal(events[0], 'running:0');
    assert.equal(events.at(-1), `completed:${server.payload.length}`);
  });

  it('refuses to download over an image the pool already has', async () => {
    await assert.rejects(manager.start('ok'), /image\.iso already exists in pool 'default'/);
  });

  it('deletes the file when the SHA-256 does not match', async () => {
    const done = await manager.whenDone((await manager.start('bad')).id);
    assert.equal(done.status, 'failed');
    assert.match(done.error!, /SHA-256 mismatch for bad\.iso: expected f{64}, got [0-9a-f]{64}/);
    assert.equal(done.file, '');
    assert.deepEqual(poolFiles(), ['image.iso']);
    assert.deepEqual(partFiles(), []);
  });

  it('cancels mid-way and leaves no file', async () => {
    const started = await manager.start('slow');
    await new Promise<void>((resolve) => {
      const check = (d: { id: number; receivedBytes: number }): void => {
        if (d.id === started.id && d.receivedBytes > 0) {
          manager.off('progress', check);
          resolve();
        }
      };
      manager.on('progress', check);
    });
    assert.deepEqual(partFiles().length, 1, 'the .part file exists while the download runs');
    const cancelled = await manager.cancel(started.id);
    assert.equal(cancelled.status, 'cancelled');
    assert.ok(cancelled.receivedBytes > 0 && cancelled.receivedBytes < server.payload.length);
    assert.deepEqual(poolFiles(), ['image.iso']);
    assert.deepEqual(partFiles(), []);
    await assert.rejects(manager.cancel(started.id), /is not running \(cancelled\)/);
  });

  it('reports a server error and leaves no file', async () => {
    const done = await manager.whenDone((await manager.start('error')).id);
    assert.equal(done.status, 'failed');
    assert.match(done.error!, /error\.iso: HTTP 500 Internal Server Error/);
    assert.deepEqual(poolFiles(), ['image.iso']);
    assert.deepEqual(partFiles(), []);
  });

  it('resumes with a Range request after the connection drops', async () => {
    server.ranges.length = 0;
    const done = await manager.whenDone((await manager.start('drop')).id);
    assert.equal(done.status, 'completed', done.error);
    assert.equal(server.ranges.length, 2);
    assert.equal(server.ranges[0], '');
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(server.ranges[1]!)?.[1]);
    assert.ok(resumedAt > 0 && resumedAt < server.payload.length, `resumed at ${server.ranges[1]}`);
    assert.ok(fs.readFileSync(path.join(pool, 'drop.iso')).equals(server.payload));
  });

  it('reads the hash from a SHA256SUMS file', async () => {
    fs.rmSync(path.join(pool, 'image.iso'));
    const done = await manager.whenDone((await manager.start('sums')).id);
    assert.equal(done.status, 'completed', done.error);
    assert.equal(hashFromSums(`${server.sha256} *image.iso\n`, 'image.iso'), server.sha256);
    assert.equal(hashFromSums(`${server.sha256}\n`, 'x.iso'), server.sha256);
    assert.equal(hashFromSums(`${server.sha256}  other.iso\n`, 'x.iso'), undefined);
  });

  it('lists every download with its outcome', () => {
    assert.deepEqual(
      manager.list().map((d) => `${d.entry}:${d.status}`),
      ['ok:completed', 'bad:failed', 'slow:cancelled', 'error:failed', 'drop:completed', 'sums:completed'],
    );
  });

  it('removes .part files an earlier host left behind', () => {
    fs.writeFileSync(path.join(downloads, '9-left.iso.part'), 'half');
    new DownloadManager({ downloadsDir: downloads, poolDir: () => pool, catalogue: async () => ({ entries }) });
    assert.deepEqual(partFiles(), []);
  });
});

describe('catalogue', () => {
  it('ships real entries, each with a checksum', async () => {
    const { entries, source } = await loadCatalogue('');
    assert.equal(source, 'shipped catalogue');
    assert.ok(entries.some((e) => e.arch === 'i686') && entries.some((e) => e.arch === 'x86_64'));
    for (const e of entries) assert.ok(e.sha256 || e.sha256Url, e.id);
  });

  it('reads a catalogue file named by DOMUS_CATALOGUE_URL and names what is wrong with a bad one', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-cat-'));
    const file = path.join(dir, 'c.json');
    const entry = { id: 'x', name: 'X', version: '1', arch: 'i686', url: 'http://127.0.0.1/x.iso', sha256: 'a'.repeat(64), kind: 'iso', memoryMiB: 64, diskGiB: 1, boot: 'hvm' };
    fs.writeFileSync(file, JSON.stringify({ entries: [entry] }));
    assert.deepEqual((await loadCatalogue(file)).entries.map((e) => e.id), ['x']);
    fs.writeFileSync(file, JSON.stringify({ entries: [{ ...entry, sha256: undefined }] }));
    await assert.rejects(loadCatalogue(file), /c\.json is invalid: entries\.0: an entry needs sha256 or sha256Url/);
    fs.writeFileSync(file, JSON.stringify({ entries: [entry, entry] }));
    await assert.rejects(loadCatalogue(file), /entry id 'x' appears twice/);
    fs.rmSync(dir, { recursive: true });
  });
});
