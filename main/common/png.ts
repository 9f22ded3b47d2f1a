// PNG encoding of RGBA pixels (screenshots).
import { PNG } from 'pngjs';

export function encodePng(width: number, height: number, rgba: Uint8Array): Buffer {
  const png = new PNG({ width, height });
  png.data = Buffer.from(rgba.buffer, rgba.byteOffset, width * height * 4);
  // The "Sub" filter alone: on 1024x768 screen contents it encodes in ~20 ms where pngjs's adaptive
  // default takes ~100 ms, for files ~1.6x larger (100 KiB); screenshots go over a local socket.
  return PNG.sync.write(png, { filterType: 1 });
}
