import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it, mock } from 'node:test';
import type { CatalogueEntry, DownloadInfo } from '@shared/api';
import { connectFakeHost, settle, type FakeHostTransport } from '../testing/fakeHost';
import { useCatalogueStore } from './catalogue';
import { useToastStore } from './toasts';

const TINY: CatalogueEntry = { id: 'tiny', name: 'Tiny Linux', version: '1', arch: 'i686', url: 'https://example.org/tiny.iso', kind: 'iso', memoryMiB: 160, diskGiB: 1, boot: 'hvm' };

function progress(fields: Partial<DownloadInfo>): DownloadInfo {
  return { id: 7, entry: 'tiny', url: TINY.url, file: '', status: 'running', receivedBytes: 0, totalBytes: 1000, ...fields };
}

describe('catalogue store', () => {
  let host: FakeHostTransport;

  beforeEach(async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    host = await connectFakeHost();
    host.answer('catalogue.list', () => ({ entries: [structuredClone(TINY)], source: 'built-in' }));
  });
  afterEach(() => mock.timers.reset());

  it('follows a download it started, and marks its entry downloaded when it completes', async () => {
    const catalogue = useCatalogueStore();
    await catalogue.load();
    host.answer('download.start', () => ({ download: progress({}) }));
    const id = await catalogue.download(catalogue.entries[0]);
    assert.equal(id, 7);
    host.emit('download.progress', { download: progress({ receivedBytes: 400 }) });
    // Another client's download is theirs to show.
    host.emit('download.progress', { download: progress({ id: 8, receivedBytes: 1 }) });
    await settle();
    assert.equal(catalogue.downloads[7].receivedBytes, 400);
    assert.equal(catalogue.downloads[8], undefined);
    host.emit('download.progress', { download: progress({ status: 'completed', receivedBytes: 1000, file: '/pool/tiny.iso' }) });
    await settle();
    assert.equal(catalogue.downloads[7].status, 'completed');
    assert.equal(catalogue.entries[0].file, '/pool/tiny.iso');
  });

  it('keeps a refused start as a failed download with the reason', async () => {
    const catalogue = useCatalogueStore();
    await catalogue.load();
    host.answer('download.start', () => {
      throw { code: 'OPERATION_FAILED', message: 'HTTP 500 Internal Server Error' };
    });
    const first = await catalogue.download(TINY);
    const second = await catalogue.download(TINY);
    assert.ok(first < 0 && second < 0 && first !== second);
    assert.equal(catalogue.downloads[first].status, 'failed');
    assert.equal(catalogue.downloads[first].error, 'HTTP 500 Internal Server Error');
  });

  it('cancels only a running download, and says when the host refused', async () => {
    const catalogue = useCatalogueStore();
    host.answer('download.start', () => ({ download: progress({}) }));
    host.answer('download.cancel', () => {
      throw { code: 'NO_SUPPORT', message: 'no such download' };
    });
    const id = await catalogue.download(TINY);
    await catalogue.cancel(id);
    assert.deepEqual(host.sent('download.cancel'), [{ id: 7 }]);
    assert.deepEqual(
      useToastStore().toasts.map((t) => [t.title, t.message]),
      [['Could not cancel the download', 'no such download']],
    );
    host.emit('download.progress', { download: progress({ status: 'cancelled' }) });
    await settle();
    await catalogue.cancel(id);
    assert.equal(host.sent('download.cancel').length, 1);
  });

  it('says why the catalogue could not be read', async () => {
    const catalogue = useCatalogueStore();
    host.answer('catalogue.list', () => {
      throw { code: 'OPERATION_FAILED', message: 'catalogue.json is not valid JSON' };
    });
    await catalogue.load();
    assert.equal(catalogue.problem, 'catalogue.json is not valid JSON');
  });
});
