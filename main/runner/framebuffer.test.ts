// Graphical-mode capture against a real guest booted with `vga=791` on its command line (the runner
// applies it to the bzImage setup header, as a bootloader would): vesafb at 1024x768x16, pixels
// written to /dev/fb0 show up in the screenshot and, as a small update, in a VNC viewer.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PNG } from 'pngjs';
import type { RunnerEvent, ScreenshotResult } from './protocol.js';
import { SAMPLE_CMDLINE } from '../testing/harness.js';
import { RfbClient } from '../testing/rfb-client.js';
import { ControlClient, READY, findGuest, pvConfig, spawnRunner, type SpawnedRunner } from '../testing/runner-harness.js';

const guest = findGuest();

/** RGB565 little-endian bytes of one colour, as a printf format repeated for a 64-pixel row. */
const rowOf = (rgb565: number) => `printf '\\${(rgb565 & 0xff).toString(8).padStart(3, '0')}\\${(rgb565 >> 8).toString(8).padStart(3, '0')}%.0s' $(seq 64)`;

/** Fills a 64x64 block at (x, y) of the 1024x768x16 framebuffer. */
const paintBlock = (x: number, y: number, rgb565: number) =>
  `${rowOf(rgb565)} > /tmp/row; for y in $(seq ${y} ${y + 63}); do dd if=/tmp/row of=/dev/fb0 bs=128 seek=$(((y*2048+${x * 2})/128)) count=1 2>/dev/null; done`;

describe('graphical framebuffer (vesafb via vga=791)', { skip: 'missing' in guest ? guest.missing : false }, () => {
  let runner: SpawnedRunner;
  let ctl: ControlClient;
  const sizes: RunnerEvent[] = [];

  async function screenshot(): Promise<{ width: number; height: number; px: (x: number, y: number) => number[] }> {
    const r = await ctl.call<ScreenshotResult>('screenshot');
    const png = PNG.sync.read(Buffer.from(r.png, 'base64'));
    return { width: png.width, height: png.height, px: (x, y) => [...png.data.subarray((y * png.width + x) * 4, (y * png.width + x) * 4 + 4)] };
  }

  before(async () => {
    if ('missing' in guest) return;
    runner = spawnRunner(pvConfig(guest, { name: 'gfx-test', cmdline: `${SAMPLE_CMDLINE} vga=791` }));
    ctl = await ControlClient.connect(runner.paths.control);
    ctl.on('event', (e) => e.event === 'screen-size' && sizes.push(e));
    const hello = await ctl.call<{ serialBacklog: string }>('hello');
    ctl.serial = Buffer.from(hello.serialBacklog, 'base64').toString('latin1') + ctl.serial;
    await ctl.waitSerial(new RegExp(READY), 600_000);
    await ctl.sh('true');
  });

  after(async () => {
    ctl?.close();
    await runner?.kill();
  });

  test('the mode set from vga=791 is 1024x768 at 16 bpp', async () => {
    assert.deepEqual(sizes.at(-1), { event: 'screen-size', width: 1024, height: 768, bpp: 16 });
    const shot = await screenshot();
    assert.deepEqual([shot.width, shot.height], [1024, 768]);
  });

  test('pixels written to /dev/fb0 are in the screenshot and arrive as a small VNC update', async () => {
    const v = await RfbClient.open(runner.paths.vnc);
    await v.handshake();
    assert.deepEqual([v.width, v.height], [1024, 768]);
    v.requestUpdate(false);
    await v.readUpdate();
    await ctl.sh(paintBlock(512, 576, 0xf800), 300_000); // red, tile-aligned (64 dd runs: slow on a loaded machine)
    await ctl.call('pause');
    try {
      const shot = await screenshot();
      assert.deepEqual(shot.px(540, 600), [255, 0, 0, 255]);
      assert.deepEqual(shot.px(575, 639), [255, 0, 0, 255]);
      // Collect the incremental updates until the block is in: only the block's tile (plus fbcon's
      // cursor, which blinks) may have been sent.
      let sent = 0;
      let block = false;
      for (let i = 0; i < 10 && !block; i++) {
        v.requestUpdate(true);
        for (const r of await v.readUpdate()) {
          sent += r.w * r.h;
          if (r.x <= 512 && r.y <= 576 && r.x + r.w >= 576 && r.y + r.h >= 640 && r.pixels) {
            const o = ((600 - r.y) * r.w + (540 - r.x)) * 4;
            assert.deepEqual([...r.pixels.subarray(o, o + 3)], [0, 0, 255], 'BGRX little-endian red');
            block = true;
          }
        }
      }
      assert.ok(block, 'the painted block was sent');
      assert.ok(sent < (1024 * 768) / 4, `only changed tiles were sent (${sent} px)`);
    } finally {
      await ctl.call('resume');
      v.close();
    }
  });
});
