// `npm run bench console`: the VNC console of the PV sample guest in fbcon at 1024x768x16 (vga=0x317)
// on Domus's runner and, in the same run, on QEMU's own VNC server (TCG, VNC on a unix socket), read
// by the same client (ZRLE + CopyRect + DesktopSize; it counts and times updates, it does not paint):
//  - frames per second and bytes per second delivered while the guest scrolls text on tty1;
//  - keypress-to-pixel latency on an idle screen (cursor blink off): KeyEvent sent → first update;
//  - the engine process's CPU on an idle console without a viewer and with one waiting for updates.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { readProcStat } from '../main/common/proc-stat.js';
import { RfbClient } from '../main/testing/rfb-client.js';
import { SAMPLE_CMDLINE, SerialWatch, TestHost, guest, markedCommand } from '../main/testing/harness.js';

const CMDLINE = `${SAMPLE_CMDLINE} vga=0x317`;
const SCROLL_SECONDS = 15;
const IDLE_SECONDS = 20;
const KEYPRESSES = 10;
const ENCODINGS = [1, 16, -223]; // CopyRect, ZRLE, DesktopSize
// Lines that differ from each other (kernel symbols), as a scrolling log or listing has them.
const SCROLL = `while :; do cat /proc/kallsyms; done > /dev/tty1 & true`;

interface Engine {
  label: string;
  pid: number;
  vncSocket: string;
  sh(cmd: string): Promise<string>;
}

export interface ConsoleFigures {
  label: string;
  scrollFps: number;
  scrollKiBs: number;
  keyLatencyMs: number[];
  idleFps: number;
  cpuIdleNoViewer: number;
  cpuIdleViewer: number;
  cpuScrollViewer: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** CPU seconds (user + system) a process has used, from /proc. */
function cpuSeconds(pid: number): number {
  const stat = readProcStat(`/proc/${pid}/stat`);
  if (!stat) throw new Error(`process ${pid} is gone`);
  return stat.cpuTimeMs / 1000;
}

/** Percent of one core used by `pid` while `during` runs. */
async function cpuPercent(pid: number, during: () => Promise<void>): Promise<number> {
  const c0 = cpuSeconds(pid);
  const t0 = performance.now();
  await during();
  return ((cpuSeconds(pid) - c0) / ((performance.now() - t0) / 1000)) * 100;
}

async function viewer(socket: string): Promise<RfbClient> {
  const v = await RfbClient.open(socket);
  await v.handshake({});
  v.decode = false;
  v.setEncodings(ENCODINGS);
  v.requestUpdate(false);
  await v.readUpdate(60_000);
  return v;
}

/** Updates (with at least one rectangle) a client receives in `seconds`, asking again after each. */
async function countUpdates(v: RfbClient, seconds: number): Promise<{ fps: number; kibs: number }> {
  const end = performance.now() + seconds * 1000;
  const bytes0 = v.received;
  let frames = 0;
  v.requestUpdate(true);
  for (;;) {
    const left = end - performance.now();
    if (left <= 0) break;
    try {
      const rects = await v.readUpdate(left);
      if (rects.some((r) => r.encoding >= 0)) frames++;
      v.requestUpdate(true);
    } catch {
      break; // the deadline passed while waiting
    }
  }
  return { fps: frames / seconds, kibs: (v.received - bytes0) / 1024 / seconds };
}

/** Time from a KeyEvent to the first update that shows it, on a screen that is otherwise still. */
async function keyLatency(v: RfbClient): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < KEYPRESSES; i++) {
    for (const keysym of [0x61, 0xff08]) { // 'a', then BackSpace to leave the line as it was
      // Wait for a still screen with a request outstanding, so the next update is the key's.
      v.requestUpdate(true);
      while (!(await v.quietFor(400))) {
        await v.readUpdate(30_000);
        v.requestUpdate(true);
      }
      const t0 = performance.now();
      v.key(true, keysym);
      v.key(false, keysym);
      for (;;) {
        const rects = await v.readUpdate(30_000);
        if (rects.some((r) => r.encoding >= 0)) break;
        v.requestUpdate(true);
      }
      if (keysym === 0x61) out.push(performance.now() - t0);
    }
  }
  return out;
}

async function measure(e: Engine): Promise<ConsoleFigures> {
  // fbcon's blinking cursor would redraw the idle screen every 200 ms.
  await e.sh('echo 0 > /sys/class/graphics/fbcon/cursor_blink; printf "\\033[2J" > /dev/tty1');
  await sleep(2000);
  const cpuIdleNoViewer = await cpuPercent(e.pid, () => sleep(IDLE_SECONDS * 1000));
  const v = await viewer(e.vncSocket);
  let idle = { fps: 0, kibs: 0 };
  const cpuIdleViewer = await cpuPercent(e.pid, async () => {
    idle = await countUpdates(v, IDLE_SECONDS);
  });
  v.close();
  const k = await viewer(e.vncSocket);
  const keyLatencyMs = await keyLatency(k);
  k.close();
  await e.sh(SCROLL);
  await sleep(2000);
  const s = await viewer(e.vncSocket);
  let scroll = { fps: 0, kibs: 0 };
  const cpuScrollViewer = await cpuPercent(e.pid, async () => {
    scroll = await countUpdates(s, SCROLL_SECONDS);
  });
  s.close();
  await e.sh('kill $!; true');
  return { label: e.label, scrollFps: scroll.fps, scrollKiBs: scroll.kibs, keyLatencyMs, idleFps: idle.fps, cpuIdleNoViewer, cpuIdleViewer, cpuScrollViewer };
}

async function domus(): Promise<ConsoleFigures> {
  const t = await TestHost.start();
  try {
    await t.client.call('domain.create', {
      spec: { name: 'bench-console', memoryMiB: 128, vcpus: 1, boot: { kind: 'pv', kernel: guest('vmlinuz'), initrd: guest('initrd.gz'), cmdline: CMDLINE } },
    });
    const { domain } = await t.client.call('domain.start', { domain: 'bench-console' });
    const serial = await SerialWatch.open(t.client, 'bench-console');
    await serial.wait(/DOMUS-GUEST-READY/, 900_000);
    return await measure({
      label: 'Domus (v86 runner)',
      pid: t.runnerPid(domain.uuid)!,
      // A guest of Domus's own engines always has its unix socket.
      vncSocket: (await t.client.call('domain.vncDisplay', { domain: 'bench-console' })).socket!,
      sh: (cmd) => serial.sh(cmd, 120_000),
    });
  } finally {
    await t.stop();
  }
}

/** A bare QEMU guest's serial console on the unix socket QEMU listens on: waits for output and runs shell commands. */
export async function serialShell(socketPath: string, label: string): Promise<{ wait(re: RegExp, from: number, ms: number): Promise<void>; sh(cmd: string, ms: number): Promise<string> }> {
  let sock: net.Socket | undefined;
  for (let i = 0; i < 200 && !sock; i++) {
    await sleep(100);
    sock = await new Promise<net.Socket | undefined>((resolve) => {
      const s = net.connect(socketPath, () => resolve(s));
      s.once('error', () => resolve(undefined));
    });
  }
  if (!sock) throw new Error(`${label}: QEMU's serial socket did not appear`);
  const serial = sock;
  let text = '';
  serial.on('data', (d: Buffer) => (text += d.toString('latin1')));
  const wait = async (re: RegExp, from: number, ms: number): Promise<void> => {
    const end = Date.now() + ms;
    while (!re.test(text.slice(from))) {
      if (Date.now() > end) throw new Error(`${label}: timed out waiting for ${re}; last output: ${text.slice(-300)}`);
      await sleep(20);
    }
  };
  return {
    wait,
    sh: async (cmd, ms) => {
      const { line, end } = markedCommand(cmd);
      const from = text.length;
      serial.write(line);
      await wait(end, from, ms);
      return text.slice(from);
    },
  };
}

/** The same guest under QEMU (TCG), VNC and the serial console on unix sockets. */
async function qemu(): Promise<ConsoleFigures> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-bench-qemu-'));
  const vncSocket = path.join(dir, 'vnc.sock');
  const serialSocket = path.join(dir, 'serial.sock');
  const child: ChildProcess = spawn(
    'qemu-system-i386',
    ['-accel', 'tcg', '-m', '128', '-kernel', guest('vmlinuz'), '-initrd', guest('initrd.gz'), '-append', CMDLINE,
      '-display', 'none', '-vnc', `unix:${vncSocket}`, '-serial', `unix:${serialSocket},server=on,wait=off`, '-monitor', 'none', '-nodefaults', '-vga', 'std'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  try {
    const serial = await serialShell(serialSocket, 'QEMU guest');
    await serial.wait(/DOMUS-GUEST-READY/, 0, 900_000);
    const sh = (cmd: string) => serial.sh(cmd, 120_000);
    await sh('true');
    return await measure({ label: 'QEMU 7.2 VNC (TCG)', pid: child.pid!, vncSocket, sh });
  } finally {
    child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs both engines one after the other and returns the markdown section. */
export async function consoleBench(): Promise<string> {
  const anchor = await qemu();
  const ours = await domus();
  const row = (f: ConsoleFigures) =>
    `| ${f.label} | ${f.scrollFps.toFixed(1)} | ${f.scrollKiBs.toFixed(0)} | ${median(f.keyLatencyMs).toFixed(0)} (${Math.min(...f.keyLatencyMs).toFixed(0)}–${Math.max(...f.keyLatencyMs).toFixed(0)}) | ${f.idleFps.toFixed(2)} | ${f.cpuIdleNoViewer.toFixed(1)} % | ${f.cpuIdleViewer.toFixed(1)} % (${f.cpuIdleViewer >= f.cpuIdleNoViewer ? '+' : '−'}${Math.abs(f.cpuIdleViewer - f.cpuIdleNoViewer).toFixed(1)}) | ${f.cpuScrollViewer.toFixed(1)} % |`;
  return [
    CONSOLE_HEADING,
    '',
    `Measured by \`npm run bench console\` on ${new Date().toISOString().slice(0, 10)} (${os.cpus().length} cores, load average ${os.loadavg()[0].toFixed(1)} at the end: other work shares the machine, so CPU figures are ±30 %).`,
    `PV sample guest with \`vga=0x317\` (fbcon on a 1024x768x16 framebuffer), 128 MiB, the same kernel and initrd in both engines; QEMU is the anchor (qemu-system-i386 -accel tcg, VNC on a unix socket).`,
    `One client for both: ZRLE + CopyRect + DesktopSize, an incremental request outstanding at all times; it counts updates and bytes and does not paint.`,
    `Scrolling: \`cat /proc/kallsyms\` in a loop to /dev/tty1 for ${SCROLL_SECONDS} s. Key latency: 'a' (then BackSpace) typed ${KEYPRESSES} times at the tty1 prompt, cursor blink off; median (min–max). CPU: the engine process (guest included), percent of one core, ${IDLE_SECONDS} s each.`,
    '',
    '| engine | scrolling: updates/s | scrolling: KiB/s | key → pixels, ms | idle: updates/s | CPU idle, no viewer | CPU idle, viewer waiting | CPU scrolling, viewer |',
    '|---|---|---|---|---|---|---|---|',
    row(anchor),
    row(ours),
    '',
  ].join('\n');
}

export const CONSOLE_HEADING = '## Console (VNC)';
