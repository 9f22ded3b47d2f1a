// PNG encoding of RGBA pixels (screenshots).
import { createRequire } from 'node:module';

/** Loaded at the first screenshot: a v86 runner's start (a restore, say) skips its ~20 ms. */
let pngjs: typeof import('pngjs') | undefined;

export function encodePng(width: number, height: number, rgba: Uint8Array): Buffer {
  pngjs ??= createRequire(import.meta.url)('pngjs') as typeof import('pngjs');
  const { PNG } = pngjs;
  const png = new PNG({ width, height });
  png.data = Buffer.from(rgba.buffer, rgba.byteOffset, width * height * 4);
  // The "Sub" filter alone: on 1024x768 screen contents it encodes in ~20 ms where pngjs's adaptive
  // default takes ~100 ms, for files ~1.6x larger (100 KiB); screenshots go over a local socket.
  return PNG.sync.write(png, { filterType: 1 });
}
