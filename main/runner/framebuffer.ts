// The guest screen as one RGBA image, in text and graphical modes, with change tracking in tiles so
// that viewers get only what changed. Text mode is drawn here with the guest's own font (v86 renders
// text only in a browser); graphical modes come from v86's own converter (vga.screen_fill_buffer).
import type { VgaDevice, VgaLayer } from './emulator.js';

export const TILE = 64;

export interface ScreenGeometry {
  width: number;
  height: number;
  /** 0 in text mode. */
  bpp: number;
}

interface TextParams {
  cols: number;
  rows: number;
  charWidth: number;
  fontHeight: number;
  width9: boolean;
  double: boolean;
  copy8th: boolean;
  fgMask: number;
  bgMask: number;
  pageA: number;
  pageB: number;
  pageAB: boolean;
}

interface Cursor {
  row: number;
  col: number;
  start: number;
  end: number;
  enabled: boolean;
}

const OPAQUE = 0xff000000 | 0;
/** VGA font pages in plane 2, indexed by character-map-select value. */
const FONT_PAGE = [0, 2, 4, 6, 1, 3, 5, 7];
const FONT_PAGE_BYTES = 256 * 32;

function textParams(vga: VgaDevice): TextParams {
  const double = (vga.clocking_mode & 8) !== 0;
  const width9 = !double && (vga.clocking_mode & 1) === 0;
  const cms = vga.character_map_select;
  return {
    cols: Math.max(1, vga.max_cols),
    rows: Math.max(1, vga.max_rows),
    charWidth: double ? 16 : width9 ? 9 : 8,
    fontHeight: (vga.max_scan_line & 31) + 1,
    width9,
    double,
    copy8th: (vga.attribute_mode & 4) !== 0,
    fgMask: vga.font_page_ab_enabled ? 7 : 15,
    bgMask: vga.attribute_mode & 8 ? 7 : 15,
    pageA: FONT_PAGE[((cms & 0x0c) >> 2) | ((cms & 0x20) >> 3)],
    pageB: FONT_PAGE[(cms & 0x03) | ((cms & 0x10) >> 2)],
    pageAB: vga.font_page_ab_enabled,
  };
}

function sameParams(a: TextParams | undefined, b: TextParams): boolean {
  if (!a) return false;
  for (const k of Object.keys(b) as (keyof TextParams)[]) if (a[k] !== b[k]) return false;
  return true;
}

function textCursor(vga: VgaDevice, p: TextParams): Cursor {
  // As v86's update_cursor / update_cursor_scanline.
  const pitch = Math.max(vga.max_cols, 2 * vga.offset_register);
  const rel = vga.cursor_address - vga.start_address;
  const maxLine = vga.max_scan_line & 31;
  const start = Math.min(maxLine, vga.cursor_scanline_start & 31);
  const end = Math.min(maxLine, vga.cursor_scanline_end & 31);
  const enabled = rel >= 0 && (vga.cursor_scanline_start & 32) === 0 && start < end;
  const row = enabled ? Math.floor(rel / pitch) : -1;
  const col = enabled ? rel % pitch : -1;
  return { row, col, start, end, enabled: enabled && row < p.rows && col < p.cols };
}

export class Framebuffer {
  width = 0;
  height = 0;
  /** width × height RGBA pixels, alpha 255. Valid after refresh(). */
  rgba = new Uint8Array(0);
  tilesX = 0;
  tilesY = 0;
  /**
   * Bumped whenever the guest's mode changes: width, height or depth (text mode counts as depth 0).
   * Viewers then get a DesktopSize and the whole screen, as QEMU sends on every surface switch.
   */
  geometrySeq = 0;
  bpp = -1;
  /** Per tile, the refresh number at which its pixels last changed. */
  tileStamp = new Uint32Array(0);

  private readonly source: { readonly vga: VgaDevice };
  private pixels = new Int32Array(0);
  private refreshSeq = 0;
  private lastMode: 'text' | 'graphical' | undefined;
  // Text-mode state of the last render, to redraw only cells that changed.
  private cells = new Uint16Array(0);
  private params: TextParams | undefined;
  private colors = new Int32Array(16);
  private fontA = new Uint8Array(FONT_PAGE_BYTES);
  private fontB = new Uint8Array(FONT_PAGE_BYTES);
  private cursor: Cursor | undefined;

  constructor(source: { readonly vga: VgaDevice }) {
    this.source = source;
  }

  /**
   * The machine was reset: the next refresh starts from scratch, as after a resize (viewers get a
   * DesktopSize and then the whole screen, even if the size is the same).
   */
  invalidate(): void {
    this.width = 0;
    this.height = 0;
    this.bpp = -1;
  }

  /** Current size from the VGA registers, without capturing anything. */
  geometry(): ScreenGeometry {
    const vga = this.source.vga;
    if (!vga.graphical_mode) {
      const p = textParams(vga);
      return { width: p.cols * p.charWidth, height: p.rows * p.fontHeight, bpp: 0 };
    }
    const bpp = vga.svga_enabled ? vga.svga_bpp : vga.attribute_mode & 0x40 ? 8 : 4;
    return { width: Math.max(1, vga.screen_width), height: Math.max(1, vga.screen_height), bpp };
  }

  /** Brings `rgba` up to date and stamps the tiles that changed. */
  refresh(): void {
    const seq = ++this.refreshSeq;
    const vga = this.source.vga;
    const geo = this.geometry();
    let full = false;
    if (geo.width !== this.width || geo.height !== this.height || geo.bpp !== this.bpp) {
      this.bpp = geo.bpp;
      this.resize(geo.width, geo.height, seq);
      full = true;
    }
    const mode = vga.graphical_mode ? 'graphical' : 'text';
    if (mode !== this.lastMode) full = true;
    this.lastMode = mode;
    if (mode === 'text') this.renderText(vga, full, seq);
    else this.renderGraphical(vga, full, seq);
  }

  private resize(width: number, height: number, seq: number): void {
    this.width = width;
    this.height = height;
    this.rgba = new Uint8Array(width * height * 4);
    this.pixels = new Int32Array(this.rgba.buffer);
    this.pixels.fill(OPAQUE);
    this.tilesX = Math.ceil(width / TILE);
    this.tilesY = Math.ceil(height / TILE);
    this.tileStamp = new Uint32Array(this.tilesX * this.tilesY).fill(seq);
    this.geometrySeq++;
  }

  private markRect(x: number, y: number, w: number, h: number, seq: number): void {
    const tx1 = Math.floor((x + w - 1) / TILE);
    const ty1 = Math.floor((y + h - 1) / TILE);
    for (let ty = Math.floor(y / TILE); ty <= ty1; ty++) {
      for (let tx = Math.floor(x / TILE); tx <= tx1; tx++) this.tileStamp[ty * this.tilesX + tx] = seq;
    }
  }

  // Graphical: let v86 convert VRAM into its RGBA buffer, catching the layers it would put on a
  // canvas (only dirty rows in SVGA modes), and copy them in, stamping tiles whose pixels differ.
  private renderGraphical(vga: VgaDevice, full: boolean, seq: number): void {
    if (full) vga.complete_redraw();
    const screen = vga.screen;
    const original = screen.update_buffer;
    screen.update_buffer = (layers) => {
      for (const layer of layers) this.blitLayer(layer, seq);
    };
    try {
      vga.screen_fill_buffer();
    } finally {
      screen.update_buffer = original;
    }
  }

  private blitLayer(layer: VgaLayer, seq: number): void {
    const img = layer.image_data;
    const bytes = img.data;
    const src =
      bytes.byteOffset % 4 === 0
        ? new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2)
        : new Int32Array(bytes.slice().buffer);
    // Same placement as the browser's putImageData(image, sx - bx, sy - by, bx, by, bw, bh).
    const x0 = Math.max(0, layer.screen_x);
    const x1 = Math.min(this.width, layer.screen_x + layer.buffer_width);
    const y0 = Math.max(0, layer.screen_y);
    const y1 = Math.min(this.height, layer.screen_y + layer.buffer_height);
    if (x0 >= x1 || y0 >= y1) return;
    const dst = this.pixels;
    const W = this.width;
    for (let y = y0; y < y1; y++) {
      const srcRow = (layer.buffer_y + y - layer.screen_y) * img.width + layer.buffer_x - layer.screen_x;
      const ty = Math.floor(y / TILE) * this.tilesX;
      for (let tx = Math.floor(x0 / TILE); tx * TILE < x1; tx++) {
        const sx = Math.max(x0, tx * TILE);
        const ex = Math.min(x1, (tx + 1) * TILE);
        let changed = false;
        for (let x = sx; x < ex; x++) {
          const v = src[srcRow + x] | OPAQUE;
          if (dst[y * W + x] !== v) {
            dst[y * W + x] = v;
            changed = true;
          }
        }
        if (changed) this.tileStamp[ty + tx] = seq;
      }
    }
  }

  // Text: compare characters, attributes, colours, font and cursor with the last render and redraw
  // only the cells that differ.
  private renderText(vga: VgaDevice, full: boolean, seq: number): void {
    const p = textParams(vga);
    if (!sameParams(this.params, p)) full = true;
    this.params = p;
    const colors = new Int32Array(16);
    for (let i = 0; i < 16; i++) {
      const c = vga.vga256_palette[vga.dac_mask & vga.dac_map[i]];
      colors[i] = OPAQUE | ((c & 0xff) << 16) | (c & 0xff00) | ((c >> 16) & 0xff);
    }
    for (let i = 0; i < 16; i++) if (colors[i] !== this.colors[i]) full = true;
    this.colors = colors;
    const fontA = vga.plane2.subarray(p.pageA * FONT_PAGE_BYTES, (p.pageA + 1) * FONT_PAGE_BYTES);
    const fontB = vga.plane2.subarray(p.pageB * FONT_PAGE_BYTES, (p.pageB + 1) * FONT_PAGE_BYTES);
    if (!Buffer.from(fontA.buffer, fontA.byteOffset, fontA.length).equals(this.fontA)) {
      this.fontA.set(fontA);
      full = true;
    }
    if (!Buffer.from(fontB.buffer, fontB.byteOffset, fontB.length).equals(this.fontB)) {
      this.fontB.set(fontB);
      full = true;
    }
    if (this.cells.length !== p.cols * p.rows) {
      this.cells = new Uint16Array(p.cols * p.rows);
      full = true;
    }
    const cursor = textCursor(vga, p);
    const old = this.cursor;
    const cursorMoved =
      !old ||
      old.row !== cursor.row ||
      old.col !== cursor.col ||
      old.start !== cursor.start ||
      old.end !== cursor.end ||
      old.enabled !== cursor.enabled;
    this.cursor = cursor;

    const mem = vga.vga_memory;
    const splitRow = vga.scan_line_to_screen_row(vga.line_compare);
    const rowSkip = Math.max(0, 2 * (2 * vga.offset_register - p.cols));
    let addr = vga.start_address << 1;
    for (let r = 0; r < p.rows; r++) {
      if (r === splitRow) addr = 0;
      for (let c = 0; c < p.cols; c++, addr += 2) {
        const cell = (mem[addr] | 0) | ((mem[addr | 1] | 0) << 8);
        const i = r * p.cols + c;
        const atCursor =
          cursorMoved && ((r === cursor.row && c === cursor.col) || (old !== undefined && r === old.row && c === old.col));
        if (!full && !atCursor && this.cells[i] === cell) continue;
        this.cells[i] = cell;
        this.drawCell(p, r, c, cell, cursor.enabled && r === cursor.row && c === cursor.col ? cursor : undefined);
        this.markRect(c * p.charWidth, r * p.fontHeight, p.charWidth, p.fontHeight, seq);
      }
      addr += rowSkip;
    }
  }

  private drawCell(p: TextParams, row: number, col: number, cell: number, cursor: Cursor | undefined): void {
    const chr = cell & 0xff;
    const attr = cell >> 8;
    const fg = this.colors[attr & p.fgMask];
    const bg = this.colors[(attr >> 4) & p.bgMask];
    // With two font pages enabled, attribute bit 3 clear selects page B.
    const font = p.pageAB && (attr & 8) === 0 ? this.fontB : this.fontA;
    const lineGraphics = p.copy8th && chr >= 0xc0 && chr <= 0xdf;
    const W = this.width;
    let o = row * p.fontHeight * W + col * p.charWidth;
    for (let line = 0; line < p.fontHeight; line++, o += W) {
      if (cursor && line >= cursor.start && line <= cursor.end) {
        this.pixels.fill(fg, o, o + p.charWidth);
        continue;
      }
      const bits = font[chr * 32 + line];
      for (let x = 0; x < p.charWidth; x++) {
        let on: number;
        if (p.double) on = bits & (0x80 >> (x >> 1));
        else if (x < 8) on = bits & (0x80 >> x);
        else on = lineGraphics ? bits & 1 : 0;
        this.pixels[o + x] = on ? fg : bg;
      }
    }
  }
}
