// The runner's VNC server against a real guest (one runner for the whole file): handshake and
// authentication, Raw, ZRLE and Tight frames (decoded by the test client) equal to the runner's own
// screenshot, dirty-region updates, CopyRect for scrolls, pixel formats, DesktopSize, and keyboard
// input reaching the guest's tty1 shell.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PNG } from 'pngjs';
import type { ScreenshotResult } from './protocol.js';
import { RfbClient, expectedPixels, type ClientPixelFormat, type RfbRect } from '../testing/rfb-client.js';
import { ControlClient, READY, findGuest, pvConfig, spawnRunner, type SpawnedRunner } from '../testing/runner-harness.js';

const guest = findGuest();
const PASSWORD = 'domus-vnc-pw'; // RFB uses the first 8 characters

const RGB888: ClientPixelFormat = {
  bitsPerPixel: 32, depth: 24, bigEndian: false, redMax: 255, greenMax: 255, blueMax: 255, redShift: 16, greenShift: 8, blueShift: 0,
};

interface Shot {
  width: number;
  height: number;
  rgba: Buffer;
}

/** A client-side copy of the screen, built from the Raw rects received. */
class ClientScreen {
  data: Buffer;
  constructor(
    public width: number,
    public height: number,
    private readonly bpp: number,
  ) {
    this.data = Buffer.alloc(width * height * bpp);
  }

  apply(rects: RfbRect[]): void {
    for (const r of rects) {
      if (r.copyFrom) {
        const rows: Buffer[] = [];
        for (let row = 0; row < r.h; row++) {
          const o = ((r.copyFrom.y + row) * this.width + r.copyFrom.x) * this.bpp;
          rows.push(Buffer.from(this.data.subarray(o, o + r.w * this.bpp)));
        }
        rows.forEach((b, row) => b.copy(this.data, ((r.y + row) * this.width + r.x) * this.bpp));
        continue;
      }
      if (!r.pixels) continue;
      for (let row = 0; row < r.h; row++) {
        r.pixels.copy(this.data, ((r.y + row) * this.width + r.x) * this.bpp, row * r.w * this.bpp, (row + 1) * r.w * this.bpp);
      }
    }
  }
}

function area(rects: RfbRect[]): number {
  return rects.filter((r) => r.pixels).reduce((a, r) => a + r.w * r.h, 0);
}

/**
 * Asks for incremental updates and applies them until the client's copy equals `want` (the paused
 * guest's screen); returns the rectangles received. Fails naming `what` after `timeoutMs`.
 */
async function catchUp(v: RfbClient, screen: ClientScreen, want: Buffer, what: string, timeoutMs = 20_000): Promise<RfbRect[]> {
  const received: RfbRect[] = [];
  const deadline = Date.now() + timeoutMs;
  while (!screen.data.equals(want)) {
    const left = deadline - Date.now();
    if (left <= 0) assert.fail(`${what}: the client's copy did not match the paused screen within ${timeoutMs} ms`);
    v.requestUpdate(true);
    const rects = await v.readUpdate(left).catch((err: Error) => assert.fail(`${what}: no update made the client's copy match the paused screen (${err.message})`));
    screen.apply(rects);
    received.push(...rects);
  }
  return received;
}

describe('runner RFB server', { skip: 'missing' in guest ? guest.missing : false }, () => {
  let runner: SpawnedRunner;
  let ctl: ControlClient;

  async function screenshot(): Promise<Shot> {
    const r = await ctl.call<ScreenshotResult>('screenshot');
    const png = PNG.sync.read(Buffer.from(r.png, 'base64'));
    assert.equal(png.width, r.width);
    assert.equal(png.height, r.height);
    return { width: png.width, height: png.height, rgba: png.data };
  }

  async function viewer(opts: { version?: string; password?: string } = {}): Promise<RfbClient> {
    const v = await RfbClient.open(runner.paths.vnc);
    await v.handshake({ password: PASSWORD, ...opts });
    return v;
  }

  /** A viewer holding a complete picture of the screen. */
  async function syncedViewer(encodings: number[] = [0]): Promise<{ v: RfbClient; screen: ClientScreen }> {
    const v = await viewer();
    v.setEncodings(encodings);
    v.requestUpdate(false);
    const screen = new ClientScreen(v.width, v.height, 4);
    const rects = await v.readUpdate();
    screen.apply(rects);
    assert.equal(area(rects), v.width * v.height, 'a full request covers the screen');
    return { v, screen };
  }

  before(async () => {
    if ('missing' in guest) return;
    runner = spawnRunner(pvConfig(guest, { name: 'rfb-test', vncPassword: PASSWORD }));
    ctl = await ControlClient.connect(runner.paths.control);
    const hello = await ctl.call<{ serialBacklog: string }>('hello');
    ctl.serial = Buffer.from(hello.serialBacklog, 'base64').toString('latin1') + ctl.serial;
    await ctl.waitSerial(new RegExp(READY), 600_000);
    await ctl.sh('true'); // the serial shell is up; tty1's starts at the same time
  });

  after(async () => {
    ctl?.close();
    await runner?.kill();
  });

  test('RFB 3.8 handshake with VNC authentication; ServerInit describes the screen', async () => {
    const shot = await screenshot();
    const v = await viewer();
    assert.equal(v.name, 'rfb-test');
    assert.equal(v.width, shot.width);
    assert.equal(v.height, shot.height);
    assert.equal(v.bytesPerPixel, 4);
    v.close();
  });

  test('a wrong password is refused with a reason; 3.3 and 3.7 clients can log in', async () => {
    const bad = await RfbClient.open(runner.paths.vnc);
    await assert.rejects(bad.handshake({ password: 'wrong' }), /security failure: authentication failed/);
    bad.close();
    for (const version of ['003.003', '003.007']) {
      const v = await viewer({ version });
      assert.ok(v.width > 0 && v.height > 0, `ServerInit for ${version}`);
      v.close();
    }
  });

  test('a full Raw frame equals the runner screenshot', async () => {
    await ctl.call('pause');
    try {
      const shot = await screenshot();
      const { v, screen } = await syncedViewer();
      assert.ok(screen.data.equals(expectedPixels(shot.rgba, shot.width, 0, 0, shot.width, shot.height, RGB888)));
      v.close();
    } finally {
      await ctl.call('resume');
    }
  });

  test('incremental updates carry only the changed region, and nothing when nothing changed', async () => {
    const { v, screen } = await syncedViewer();
    await ctl.call('pause');
    v.requestUpdate(true);
    assert.ok(await v.quietFor(700), 'no update while the screen is frozen');
    await ctl.call('resume');
    // Write four characters at the top-left corner of tty1.
    await ctl.sh(`printf '\\033[1;1HZZZZ' > /dev/tty1`);
    const rects = await v.readUpdate();
    screen.apply(rects);
    assert.ok(rects.length > 0);
    assert.ok(area(rects) <= (v.width * v.height) / 2, `update area ${area(rects)} is a small part of the screen`);
    // Only rows that differ are sent: the glyphs' blank top rows may be left out.
    assert.ok(rects.some((r) => r.x === 0 && r.y < 16 && r.pixels), 'the changed top-left text cells are included');
    // The client's copy, built from incremental updates only, comes to match a fresh screenshot.
    await ctl.call('pause');
    try {
      const shot = await screenshot();
      await catchUp(v, screen, expectedPixels(shot.rgba, shot.width, 0, 0, shot.width, shot.height, RGB888), 'incremental updates');
    } finally {
      await ctl.call('resume');
    }
    v.close();
  });

  test('ZRLE and Tight frames in 32, 24-in-32 big-endian, 16 and 8 bpp equal the screenshot, full and incremental', async () => {
    const formats: ClientPixelFormat[] = [
      RGB888,
      { ...RGB888, bigEndian: true },
      { ...RGB888, redShift: 24, greenShift: 16, blueShift: 8 }, // colour in the high three bytes
      { bitsPerPixel: 16, depth: 16, bigEndian: false, redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 },
      { bitsPerPixel: 8, depth: 8, bigEndian: false, redMax: 7, greenMax: 7, blueMax: 3, redShift: 0, greenShift: 3, blueShift: 6 },
    ];
    for (const encoding of [16, 7]) {
      for (const pf of formats) {
        const label = `encoding ${encoding}, ${pf.bitsPerPixel} bpp shifts ${pf.redShift}/${pf.greenShift}/${pf.blueShift}${pf.bigEndian ? ' BE' : ''}`;
        const v = await viewer();
        v.setPixelFormat(pf);
        // The client's order decides: the first encoding we implement is used.
        v.setEncodings([5, encoding, 16, 7, 0]);
        await ctl.call('pause');
        try {
          const shot = await screenshot();
          v.requestUpdate(false);
          const rects = await v.readUpdate();
          assert.ok(rects.length > 0 && rects.every((r) => r.encoding === encoding), `${label}: every rect in the chosen encoding`);
          const screen = new ClientScreen(v.width, v.height, pf.bitsPerPixel / 8);
          screen.apply(rects);
          assert.ok(screen.data.equals(expectedPixels(shot.rgba, shot.width, 0, 0, shot.width, shot.height, pf)), `${label}: full frame`);
          await ctl.call('resume');
          // A small change through the same zlib stream: the client's copy still matches.
          await ctl.sh(`printf '\\033[2;1H${encoding}-${pf.bitsPerPixel}' > /dev/tty1`);
          await ctl.call('pause');
          const after = await screenshot();
          await catchUp(v, screen, expectedPixels(after.rgba, after.width, 0, 0, after.width, after.height, pf), `${label}: after an incremental update`);
        } finally {
          await ctl.call('resume');
          v.close();
        }
      }
    }
  });

  test('a scrolling console is sent as CopyRect plus the new rows', async () => {
    for (const encoding of [0, 16]) {
      const { v, screen } = await syncedViewer([1, encoding]);
      await ctl.call('pause');
      v.requestUpdate(true);
      await ctl.call('resume');
      // Five lines at the bottom of tty1 scroll the screen up by five text rows.
      await ctl.sh(`printf '\\033[99;1H\\n1\\n2\\n3\\n4\\n5-${encoding}' > /dev/tty1`);
      await ctl.call('pause');
      try {
        const shot = await screenshot();
        const first = await v.readUpdate();
        screen.apply(first);
        const rects = [...first, ...(await catchUp(v, screen, expectedPixels(shot.rgba, shot.width, 0, 0, shot.width, shot.height, RGB888), `encoding ${encoding}`))];
        const copies = rects.filter((r) => r.encoding === 1).length;
        const sent = area(rects);
        assert.ok(copies >= 1, `encoding ${encoding}: a CopyRect moved the text`);
        assert.ok(sent < (v.width * v.height) / 2, `encoding ${encoding}: only new rows sent (${sent} px of ${v.width * v.height})`);
      } finally {
        await ctl.call('resume');
        v.close();
      }
    }
  });

  test('16 and 8 bpp and big-endian pixel formats, several viewers at once', async () => {
    const formats: ClientPixelFormat[] = [
      { bitsPerPixel: 16, depth: 16, bigEndian: false, redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 },
      { bitsPerPixel: 8, depth: 8, bigEndian: false, redMax: 7, greenMax: 7, blueMax: 3, redShift: 0, greenShift: 3, blueShift: 6 },
      { ...RGB888, bigEndian: true },
      RGB888,
    ];
    await ctl.call('pause');
    try {
      const shot = await screenshot();
      const viewers = await Promise.all(formats.map(() => viewer()));
      viewers.forEach((v, i) => {
        v.setPixelFormat(formats[i]);
        v.requestUpdate(false);
      });
      await Promise.all(
        viewers.map(async (v, i) => {
          const screen = new ClientScreen(v.width, v.height, formats[i].bitsPerPixel / 8);
          screen.apply(await v.readUpdate());
          const want = expectedPixels(shot.rgba, shot.width, 0, 0, shot.width, shot.height, formats[i]);
          assert.ok(screen.data.equals(want), `pixels in format #${i}`);
        }),
      );
      viewers.forEach((v) => v.close());
    } finally {
      await ctl.call('resume');
    }
  });

  test('KeyEvents type into the tty1 shell (Shift as a client sends it, and added where missing)', async () => {
    const v = await viewer();
    let from = ctl.serial.length;
    v.typeKeysyms('echo KBD$((6*7))OK > /dev/ttyS0\n');
    await ctl.waitSerial(/KBD42OK/, 30_000, from);
    // Bare keysyms for '$', '(', '+', ')', '>' (no Shift_L from the client): the server adds Shift.
    // Letters keep the client's Shift state (Caps Lock decides their case), hence no 'S' here.
    from = ctl.serial.length;
    for (const ch of "echo bare$((1+2))x > /dev/tty$(printf '\\123')0") {
      v.key(true, ch.charCodeAt(0));
      v.key(false, ch.charCodeAt(0));
    }
    v.key(true, 0xff0d);
    v.key(false, 0xff0d);
    await ctl.waitSerial(/bare3x/, 30_000, from);
    v.close();
  });

  test('QEMU Extended Key Events: announced, and XT keycodes (incl. 0xE0 keys) reach the guest', async () => {
    const v = await viewer();
    v.setEncodings([0, -258]);
    v.requestUpdate(true);
    const rects = await v.readUpdate();
    assert.ok(rects.some((r) => r.encoding === -258), 'the server confirms the pseudo-encoding');
    // XT keycodes as noVNC sends them (xtscancodes.js, 0xE0xx folded into 0x80|xx).
    const codes: Record<string, number> = {
      e: 0x12, c: 0x2e, h: 0x23, o: 0x18, ' ': 0x39, q: 0x10, m: 0x32, u: 0x16, x: 0x2d, '0': 0x0b, '2': 0x03, '3': 0x04,
      '/': 0x35, d: 0x20, v: 0x2f, t: 0x14, y: 0x15,
    };
    const shifted: Record<string, number> = { $: 0x05, '(': 0x0a, ')': 0x0b, '+': 0x0d, '>': 0x34, S: 0x1f };
    const press = (code: number) => {
      v.qemuKey(true, 0, code);
      v.qemuKey(false, 0, code);
    };
    const from = ctl.serial.length;
    for (const ch of 'echo qemu$((2+3))x > /dev/ttyS0') {
      if (ch in shifted) {
        v.qemuKey(true, 0xffe1, 0x2a);
        press(shifted[ch]);
        v.qemuKey(false, 0xffe1, 0x2a);
      } else press(codes[ch]);
    }
    press(0x1c); // Enter
    await ctl.waitSerial(/qemu5x/, 30_000, from);
    // ArrowUp (0xE0 0x48 → 0xC8) recalls the line; keypad Enter (0xE0 0x1C → 0x9C) runs it again.
    press(0xc8);
    press(0x9c);
    await ctl.waitSerial(/qemu5x[\s\S]*qemu5x/, 30_000, from);
    v.close();
  });

  test('DesktopSize after a VGA mode change, then a full frame of the new size', async (t) => {
    const probe = await ctl.sh('[ -e /dev/port ] && echo HAVE-DEV-PORT');
    if (!probe.includes('HAVE-DEV-PORT')) {
      t.skip('the guest kernel has no /dev/port to program the VGA sequencer');
      return;
    }
    // Sequencer register 1 (clocking mode) bit 0: 9-dot (720 px) ↔ 8-dot (640 px) characters.
    const setDots = (eight: boolean) =>
      ctl.sh(
        `printf '\\001' | dd of=/dev/port bs=1 seek=964 count=1 2>/dev/null; ` +
          `printf '\\00${eight ? 1 : 0}' | dd of=/dev/port bs=1 seek=965 count=1 2>/dev/null`,
      );
    const { v } = await syncedViewer([0, -223]);
    const before = { width: v.width, height: v.height };
    const narrow = before.width === 720 ? 640 : 720;
    const sizeEvent = ctl.waitEvent('screen-size', 5000);
    v.requestUpdate(true);
    await setDots(narrow === 640);
    try {
      let resized: RfbRect | undefined;
      for (let i = 0; i < 10 && !resized; i++) {
        const rects = await v.readUpdate();
        resized = rects.find((r) => r.encoding === -223);
        if (!resized) v.requestUpdate(true);
      }
      assert.ok(resized, 'a DesktopSize rect arrives');
      assert.deepEqual({ w: resized.w, h: resized.h }, { w: narrow, h: before.height });
      assert.deepEqual(await sizeEvent, { event: 'screen-size', width: narrow, height: before.height, bpp: 0 });
      v.requestUpdate(true);
      const full = await v.readUpdate();
      assert.equal(area(full), narrow * before.height, 'the whole new screen follows');
    } finally {
      await setDots(before.width === 640);
      v.close();
    }
  });
});
