// A local HTTP server for download tests: serves an image with Range support, and misbehaves on
// request (drops the connection half-way once, answers 500, trickles bytes so a cancel lands mid-way).
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { CatalogueEntry } from '../../shared/api.js';

export interface ImageServer {
  url: string;
  payload: Buffer;
  sha256: string;
  /** Range headers received, in order ('' for none). */
  ranges: string[];
  /** A catalogue entry for `path` on this server. */
  entry(id: string, path: string, extra?: Partial<CatalogueEntry>): CatalogueEntry;
  close(): Promise<void>;
}

/**
 * Paths: /ok/<name> serves the payload; /drop/<name> closes the socket after half the payload on
 * the first request without a Range header; /error/<name> answers 500; /slow/<name> sends 64 KiB
 * every 200 ms; /sums/SHA256SUMS lists the payload's hash for every name.
 */
export async function startImageServer(payload: Buffer = randomBytes(3 * 1024 * 1024)): Promise<ImageServer> {
  const sha256 = createHash('sha256').update(payload).digest('hex');
  const ranges: string[] = [];
  let dropped = false;
  const server = http.createServer((req, res) => {
    const [, mode] = (req.url ?? '').split('/');
    if (mode === 'sums') {
      res.end(`${'0'.repeat(64)}  other.iso\n${sha256}  image.iso\n${sha256}  slow.iso\n`);
      return;
    }
    ranges.push(req.headers.range ?? '');
    if (mode === 'error') {
      res.writeHead(500, 'Internal Server Error').end('boom');
      return;
    }
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const start = m ? Number(m[1]) : 0;
    const body = payload.subarray(start);
    const headers: http.OutgoingHttpHeaders = { 'content-length': body.length, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
    if (m) headers['content-range'] = `bytes ${start}-${payload.length - 1}/${payload.length}`;
    res.writeHead(m ? 206 : 200, headers);
    if (mode === 'drop' && !m && !dropped) {
      dropped = true;
      // Once the half is written to the kernel, closing still sends it, then the FIN.
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => req.socket.destroy());
      return;
    }
    if (mode === 'slow') {
      let at = 0;
      const tick = (): void => {
        if (res.destroyed) return;
        const chunk = body.subarray(at, at + 64 * 1024);
        at += chunk.length;
        if (at >= body.length) res.end(chunk);
        // The pacing is the point: a download slow enough for a cancel to land mid-way.
        else res.write(chunk, () => setTimeout(tick, 200));
      };
      tick();
      return;
    }
    res.end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    payload,
    sha256,
    ranges,
    entry: (id, p, extra = {}) => ({
      id,
      name: `Test ${id}`,
      version: '1',
      arch: 'i686',
      url: `${url}${p}`,
      sha256,
      kind: 'iso',
      memoryMiB: 128,
      diskGiB: 1,
      boot: 'hvm',
      ...extra,
    }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
