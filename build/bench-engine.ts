// `npm run bench engine`: the embedded engine's efficiency, side by side in one run. The i686 PV
// sample (128 MiB) on (a) Domus's v86 runner, (b) bare v86 in a Node script with the runner's v86
// options and nothing of Domus around it (Node's default V8 flags: the anchor is v86 as anyone runs
// it), (c) QEMU (TCG) through Domus. Per engine: boot to
// DOMUS-GUEST-READY; idle CPU of the engine process once the guest settled (utime + stime from
// /proc/PID/stat, not wall clock); its RSS with a breakdown (wasm memory from /proc/PID/smaps; for v86
// the wasm memory's parts and the Node heap as the process itself reports them); a busybox loop timed
// by the guest's clock; save time and state size; restore to a serial shell that answers `echo`.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { APP_ROOT } from '../main/common/paths.js';
import { processAlive } from '../main/common/fsutil.js';
import { readProcStat } from '../main/common/proc-stat.js';
import { findFirmware } from '../main/host/drivers/v86/firmware.js';
import { RUNNER_NODE_FLAGS, type RunnerMemory, type StatsResult } from '../main/runner/protocol.js';
import { controlRequest } from '../main/testing/connect-unix.js';
import { SAMPLE_CMDLINE, SerialWatch, TestHost, createOn, engineSkip, guest, sleep, type LocalEngine } from '../main/testing/harness.js';

export const ENGINE_HEADING = '## Embedded engine efficiency';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SETTLE_MS = 10_000;
const IDLE_MS = 20_000;
const MEMORY = 128 << 20;
const LOOP_DEF = 'f(){ i=0;while [ $i -lt 20000 ];do i=$((i+1));done;}';
const LOOP_RUN = 'read a b </proc/uptime;f;read c d </proc/uptime;echo L$a:$c';

/**
 * Bare v86, driven over stdin/stdout by JSON lines. `boot` mode boots the sample and then takes
 * commands (sh, mem, save, quit); `restore` mode starts from a state file and reports when the serial
 * shell first answers. The options are the runner's for this guest (RunnerConfig from the v86 driver).
 */
const BARE = `
import { V86 } from 'v86';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { createRequire } from 'node:module';
const [mode, bios, vgaBios, kernel, initrd, cmdline, vgaBytes] = process.argv.slice(2);
const ab = (p) => { const b = fs.readFileSync(p); return { buffer: b.buffer.slice(b.byteOffset, b.byteOffset + b.length) }; };
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
globalThis.ImageData = class { constructor(d, w, h) { this.data = d; this.width = w; this.height = h; } };
const options = {
  wasm_path: path.join(path.dirname(createRequire(import.meta.url).resolve('v86')), 'v86.wasm'),
  bios: ab(bios), vga_bios: ab(vgaBios), memory_size: ${MEMORY}, vga_memory_size: Number(vgaBytes),
  autostart: true, virtio_balloon: true, acpi: true, disable_speaker: true,
};
if (mode === 'boot') Object.assign(options, { bzimage: ab(kernel), initrd: ab(initrd), cmdline });
else options.initial_state = ab(kernel);
const emu = new V86(options);
let text = '';
const waiters = new Set();
emu.add_listener('serial0-output-byte', (b) => { text += String.fromCharCode(b); for (const w of [...waiters]) w(); });
const waitFor = (s, from) => new Promise((resolve) => {
  const check = () => { const i = text.indexOf(s, from); if (i < 0) return; waiters.delete(check); resolve(text.slice(from, i)); };
  waiters.add(check); check();
});
let n = 0;
const sh = async (cmd) => {
  const id = 'END' + ++n, from = text.length;
  emu.serial0_send(cmd + '; echo "END""' + n + '"\\n');
  const o = await waitFor(id, from);
  return o.slice(o.indexOf('\\n') + 1).replace(/\\r/g, '');
};
if (mode === 'boot') {
  waitFor('DOMUS-GUEST-READY', 0).then(() => out({ ev: 'ready' }));
} else {
  emu.add_listener('emulator-loaded', async () => { await sh('echo restored'); out({ ev: 'answered' }); });
}
readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  const { op, arg } = JSON.parse(line);
  if (op === 'sh') out({ ev: 'sh', out: await sh(arg) });
  else if (op === 'mem') {
    const cpu = emu.v86.cpu;
    out({ ev: 'mem', wasmBytes: cpu.wasm_memory.buffer.byteLength, ramBytes: cpu.memory_size[0],
      vramBytes: cpu.devices.vga.svga_memory.length, usage: process.memoryUsage() });
  } else if (op === 'save') {
    const t0 = performance.now();
    const state = await emu.save_state();
    const ms = performance.now() - t0;
    fs.writeFileSync(arg, new Uint8Array(state));
    out({ ev: 'save', ms, bytes: state.byteLength });
  } else if (op === 'quit') process.exit(0);
});
`;

/** What one engine measured in one run. */
interface Figures {
  bootMs: number;
  /** Domus v86: the same boot when no spare runner is ready (a runner starts Node first). */
  coldBootMs?: number;
  idlePct: number;
  rssKiB: number;
  /** Resident part of the wasm memory mapping (v86 only; 0 for QEMU). */
  wasmRssKiB: number;
  /** v86's own view: wasm memory size, guest RAM, VRAM; the Node heap (process.memoryUsage()). */
  inside?: Inside;
  loopMs: number;
  /** The same loop run a third time: v86's JIT has compiled it by then. */
  warmLoopMs: number;
  saveMs: number;
  stateBytes: number;
  restoreMs: number;
  /** Domus v86: the same restore when no spare runner is ready (a runner starts Node first). */
  coldRestoreMs?: number;
  rssAfterRestoreKiB: number;
  /** The VRAM size the engine was given (v86). */
  vgaBytes: number;
}

/** The v86 process's memory by owner: the runner's own stats, and the same figures from the bare script. */
type Inside = RunnerMemory;

function cpuMs(pid: number): number {
  const stat = readProcStat(`/proc/${pid}/stat`);
  if (!stat) throw new Error(`process ${pid} is gone`);
  return stat.cpuTimeMs;
}

/** CPU % of one core the process burns over IDLE_MS, from its own utime + stime. */
async function idleCpu(pid: number): Promise<number> {
  const c0 = cpuMs(pid);
  const t0 = performance.now();
  await sleep(IDLE_MS);
  return ((cpuMs(pid) - c0) / (performance.now() - t0)) * 100;
}

/** RSS, and the resident part of the wasm memory: the anonymous mapping of ≥ 128 MiB with most pages resident. */
function memory(pid: number): { rssKiB: number; wasmRssKiB: number } {
  const smaps = fs.readFileSync(`/proc/${pid}/smaps`, 'utf8');
  let rssKiB = 0;
  let wasmRssKiB = 0;
  let size = 0;
  let anon = false;
  for (const line of smaps.split('\n')) {
    const head = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      size = (parseInt(head[2]!, 16) - parseInt(head[1]!, 16)) / 1024;
      anon = head[3] === '';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (!rss) continue;
    const kib = Number(rss[1]);
    rssKiB += kib;
    if (anon && size >= MEMORY / 1024 && kib > wasmRssKiB) wasmRssKiB = kib;
  }
  return { rssKiB, wasmRssKiB };
}

const loopMsOf = (out: string): number => {
  const m = /L([\d.]+):([\d.]+)/.exec(out);
  return m ? Math.round((Number(m[2]) - Number(m[1])) * 1000) : NaN;
};

/** The runner's own memory figures, when its `stats` reply carries them. */
async function runnerInside(t: TestHost, uuid: string): Promise<Inside | undefined> {
  const reply = await controlRequest<{ result?: StatsResult }>(path.join(t.paths.run, uuid, 'control.sock'), { id: 1, op: 'stats' });
  return reply.result?.memory;
}

async function domusRun(t: TestHost, engine: LocalEngine, name: string, dir: string): Promise<Figures> {
  await createOn(t.client, { name, memoryMiB: 128, vcpus: 1, boot: { kind: 'pv', kernel: guest('vmlinuz'), initrd: guest('initrd.gz'), cmdline: SAMPLE_CMDLINE } }, engine);
  // A host with v86 domains keeps a spare runner ready (the define above asked for one).
  if (engine === 'v86') await spareReady(t);
  const t0 = performance.now();
  const { domain } = await t.client.call('domain.start', { domain: name });
  const serial = await SerialWatch.open(t.client, name);
  await serial.wait(/DOMUS-GUEST-READY/, 300_000);
  const bootMs = performance.now() - t0;
  const pid = t.runnerPid(domain.uuid) ?? 0;
  await sleep(SETTLE_MS);
  const idlePct = await idleCpu(pid);
  const mem = memory(pid);
  const inside = engine === 'v86' ? await runnerInside(t, domain.uuid) : undefined;
  const vgaBytes = engine === 'v86' ? runnerVgaBytes(t, domain.uuid) : 0;
  await serial.sh(LOOP_DEF);
  const loopMs = loopMsOf(await serial.sh(LOOP_RUN, 300_000));
  await serial.sh(LOOP_RUN, 300_000);
  const warmLoopMs = loopMsOf(await serial.sh(LOOP_RUN, 300_000));
  const file = path.join(dir, `${name}.state`);
  const s0 = performance.now();
  await t.client.call('domain.save', { domain: name, file });
  const saveMs = performance.now() - s0;
  const stateBytes = fs.statSync(file).size;
  const r0 = performance.now();
  const restored = await t.client.call('domain.restore', { file });
  const after = await SerialWatch.open(t.client, name);
  await after.sh('echo restored');
  const restoreMs = performance.now() - r0;
  const rssAfterRestoreKiB = memory(t.runnerPid(restored.domain.uuid) ?? 0).rssKiB;
  let coldRestoreMs: number | undefined;
  let coldBootMs: number | undefined;
  if (engine === 'v86') {
    await t.client.call('domain.save', { domain: name, file });
    killSpareRunners(t);
    const c0 = performance.now();
    await t.client.call('domain.restore', { file });
    await (await SerialWatch.open(t.client, name)).sh('echo restored');
    coldRestoreMs = performance.now() - c0;
    await t.client.call('domain.destroy', { domain: name });
    killSpareRunners(t);
    const b0 = performance.now();
    await t.client.call('domain.start', { domain: name });
    await (await SerialWatch.open(t.client, name)).wait(/DOMUS-GUEST-READY/, 300_000);
    coldBootMs = performance.now() - b0;
  }
  await t.client.call('domain.destroy', { domain: name });
  fs.rmSync(file);
  return { bootMs, coldBootMs, idlePct, ...mem, inside, loopMs, warmLoopMs, saveMs, stateBytes, restoreMs, coldRestoreMs, rssAfterRestoreKiB, vgaBytes };
}

/** Waits until the host's spare v86 runner is up (its socket exists and its process lives). */
async function spareReady(t: TestHost): Promise<void> {
  const ready = (): boolean => t.spareRunners().some((s) => s.ready && s.pid !== undefined && processAlive(s.pid));
  for (const deadline = Date.now() + 30_000; !ready(); await sleep(50)) {
    if (Date.now() > deadline) throw new Error('no spare v86 runner within 30 s');
  }
}

/** Ends the host's spare v86 runner (drivers/v86/spare.ts), so that the next start has none. */
function killSpareRunners(t: TestHost): void {
  // One not started yet has no pid: the host discards a spare that is not ready.
  for (const { pid } of t.spareRunners()) if (pid) process.kill(pid, 'SIGKILL');
}

/** One bare script process and its JSON-line conversation. */
class Bare {
  private readonly lines: AsyncIterator<string>;
  readonly t0 = performance.now();
  readonly child: ChildProcess;
  constructor(script: string, args: string[]) {
    this.child = spawn(process.execPath, [script, ...args], { cwd: APP_ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
    this.lines = readline.createInterface({ input: this.child.stdout! })[Symbol.asyncIterator]();
  }
  async next(ev: string): Promise<Record<string, unknown>> {
    const { value, done } = await this.lines.next();
    if (done) throw new Error(`the bare v86 script ended before '${ev}'`);
    const msg = JSON.parse(value as string) as Record<string, unknown>;
    if (msg.ev !== ev) throw new Error(`the bare v86 script said '${String(msg.ev)}', expected '${ev}'`);
    return msg;
  }
  ask(op: string, arg?: string): Promise<Record<string, unknown>> {
    this.child.stdin!.write(JSON.stringify({ op, arg }) + '\n');
    return this.next(op);
  }
  async quit(): Promise<void> {
    const exited = new Promise((res) => this.child.once('exit', res));
    this.child.stdin!.write(JSON.stringify({ op: 'quit' }) + '\n');
    await exited;
  }
}

async function bareRun(script: string, vgaBytes: number, dir: string): Promise<Figures> {
  const fw = findFirmware();
  const base = [fw.bios, fw.vgaBios];
  const boot = new Bare(script, ['boot', ...base, guest('vmlinuz'), guest('initrd.gz'), SAMPLE_CMDLINE, String(vgaBytes)]);
  await boot.next('ready');
  const bootMs = performance.now() - boot.t0;
  const pid = boot.child.pid!;
  await sleep(SETTLE_MS);
  const idlePct = await idleCpu(pid);
  const mem = memory(pid);
  const m = await boot.ask('mem');
  const usage = m.usage as NodeJS.MemoryUsage;
  const inside: Inside = {
    wasmBytes: m.wasmBytes as number,
    ramBytes: m.ramBytes as number,
    vramBytes: m.vramBytes as number,
    heapTotal: usage.heapTotal,
    heapUsed: usage.heapUsed,
    external: usage.external,
    arrayBuffers: usage.arrayBuffers,
  };
  await boot.ask('sh', LOOP_DEF);
  const loopMs = loopMsOf((await boot.ask('sh', LOOP_RUN)).out as string);
  await boot.ask('sh', LOOP_RUN);
  const warmLoopMs = loopMsOf((await boot.ask('sh', LOOP_RUN)).out as string);
  const file = path.join(dir, 'bare.state');
  const saved = await boot.ask('save', file);
  await boot.quit();
  const restore = new Bare(script, ['restore', ...base, file, '', '', String(vgaBytes)]);
  await restore.next('answered');
  const restoreMs = performance.now() - restore.t0;
  const rssAfterRestoreKiB = memory(restore.child.pid!).rssKiB;
  await restore.quit();
  fs.rmSync(file);
  return { bootMs, idlePct, ...mem, inside, loopMs, warmLoopMs, saveMs: saved.ms as number, stateBytes: saved.bytes as number, restoreMs, rssAfterRestoreKiB, vgaBytes };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mib = (bytes: number): string => (bytes / 1048576).toFixed(0);

/** The VRAM size the v86 driver gave this guest, read from the runner's config. */
function runnerVgaBytes(t: TestHost, uuid: string): number {
  const config = JSON.parse(fs.readFileSync(path.join(t.paths.run, uuid, 'runner.json'), 'utf8')) as { vgaMemoryBytes: number };
  return config.vgaMemoryBytes;
}

export async function engineBench(): Promise<string> {
  if (engineSkip('v86')) return `${ENGINE_HEADING}\n\n${engineSkip('v86')}\n`;
  const qemu = !engineSkip('qemu');
  const script = path.join(APP_ROOT, 'dist', 'bench-engine-bare.mjs');
  fs.writeFileSync(script, BARE);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-bench-engine-'));
  const t = await TestHost.start();
  const runs: Record<'domus' | 'bare' | 'qemu', Figures[]> = { domus: [], bare: [], qemu: [] };
  const load: number[] = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      load.push(os.loadavg()[0]!);
      const domus = await domusRun(t, 'v86', `eng-v86-${i}`, dir);
      runs.domus.push(domus);
      // The bare script takes the VRAM size Domus chose.
      runs.bare.push(await bareRun(script, domus.vgaBytes, dir));
      if (qemu) runs.qemu.push(await domusRun(t, 'qemu', `eng-qemu-${i}`, dir));
      load.push(os.loadavg()[0]!);
    }
  } finally {
    await t.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return report(runs, load, qemu);
}

function report(runs: Record<'domus' | 'bare' | 'qemu', Figures[]>, load: number[], qemu: boolean): string {
  const m = (who: 'domus' | 'bare' | 'qemu', f: (x: Figures) => number): number => (runs[who].length ? median(runs[who].map(f)) : NaN);
  const ratio = (a: number, b: number): string => (Number.isFinite(a / b) ? (a / b).toFixed(2) : '—');
  const row = (what: string, f: (x: Figures) => number, fmt: (n: number) => string): string => {
    const [d, b, q] = [m('domus', f), m('bare', f), m('qemu', f)];
    const show = (n: number): string => (Number.isFinite(n) ? fmt(n) : '—');
    return `| ${what} | ${show(d)} | ${show(b)} | ${qemu ? show(q) : '—'} | ${ratio(d, b)} | ${qemu ? ratio(d, q) : '—'} |`;
  };
  const s = (n: number): string => `${(n / 1000).toFixed(2)} s`;
  const ms = (n: number): string => `${n.toFixed(0)} ms`;
  const kib = (n: number): string => `${(n / 1024).toFixed(0)} MiB`;
  const pct = (n: number): string => `${n.toFixed(1)} %`;
  const inside = (who: 'domus' | 'bare'): string => {
    const xs = runs[who].map((r) => r.inside).filter((x): x is Inside => x !== undefined);
    if (!xs.length) return `${who === 'domus' ? 'Domus runner' : 'bare v86'}: no figures from inside the process (the runner's \`stats\` does not report memory).`;
    const x = xs[Math.floor(xs.length / 2)]!;
    const rest = x.wasmBytes - x.ramBytes - x.vramBytes;
    return `${who === 'domus' ? 'Domus runner' : 'bare v86'}: wasm memory ${mib(x.wasmBytes)} MiB = guest RAM ${mib(x.ramBytes)} + VRAM ${mib(x.vramBytes)} + v86's own (JIT cache, tables, TLB) ${mib(rest)}; Node heap ${mib(x.heapUsed)} of ${mib(x.heapTotal)} MiB; external ${mib(x.external)} MiB, of it ArrayBuffers ${mib(x.arrayBuffers)} MiB (the wasm memory is not counted there).`;
  };
  const raw = (who: 'domus' | 'bare' | 'qemu'): string =>
    runs[who].map((r) => `${(r.bootMs / 1000).toFixed(1)}/${r.idlePct.toFixed(1)}/${(r.rssKiB / 1024).toFixed(0)}/${r.loopMs}/${r.warmLoopMs}/${r.saveMs.toFixed(0)}/${r.restoreMs.toFixed(0)}`).join(', ');
  return [
    ENGINE_HEADING,
    '',
    `Measured by \`npm run bench engine\` on ${new Date().toISOString().slice(0, 10)}, ${os.cpus().length} cores, Node ${process.version}; the i686 PV sample (128 MiB), median of ${RUNS} run(s), the three engines interleaved. Load average (1 min) during the runs: ${load.map((l) => l.toFixed(2)).join(', ')}. Idle CPU is the engine process's utime + stime over ${IDLE_MS / 1000} s, ${SETTLE_MS / 1000} s after DOMUS-GUEST-READY. Domus's boot and restore times run from the API call; bare v86's from the spawn of its Node process. Bare v86 runs with Node's default V8 flags, Domus's runner with \`${RUNNER_NODE_FLAGS.join(' ')}\` (main/runner/protocol.ts).`,
    '',
    '| what | Domus v86 runner | bare v86 | QEMU (TCG) via Domus | Domus / bare | Domus / QEMU |',
    '|---|---|---|---|---|---|',
    row('boot to DOMUS-GUEST-READY', (x) => x.bootMs, s),
    row('the same boot with no spare runner ready', (x) => x.coldBootMs ?? NaN, s),
    row('idle CPU, % of one core', (x) => x.idlePct, pct),
    row('engine process RSS (settled guest)', (x) => x.rssKiB, kib),
    row('of it wasm memory, resident (smaps)', (x) => x.wasmRssKiB, kib),
    row('RSS beyond the wasm memory', (x) => x.rssKiB - x.wasmRssKiB, kib),
    row('engine process RSS after restore', (x) => x.rssAfterRestoreKiB, kib),
    row('busybox loop, 20000 iterations (guest clock), first run', (x) => x.loopMs, ms),
    row('the same loop, third run (JIT warm)', (x) => x.warmLoopMs, ms),
    row('save', (x) => x.saveMs, ms),
    row('state size', (x) => x.stateBytes, (n) => `${(n / 1048576).toFixed(1)} MiB`),
    row('restore to a serial `echo` answered', (x) => x.restoreMs, ms),
    row('the same restore with no spare runner ready', (x) => x.coldRestoreMs ?? NaN, ms),
    '',
    `Inside the v86 processes (median run): ${inside('domus')} ${inside('bare')}`,
    '',
    `Raw per run (boot s / idle % / RSS MiB / loop ms / warm loop ms / save ms / restore ms): Domus ${raw('domus')}; bare ${raw('bare')}; QEMU ${qemu ? raw('qemu') : 'skipped'}. Domus's save is the \`domain.save\` call (the guest stops; the file is fsynced); bare's is v86's save_state alone, before the file is written. Domus's boot and restore take the host's spare runner (drivers/v86/spare.ts; a host with v86 domains keeps one ready); the rows below them are the same with the spare killed first: boot ${runs.domus.map((r) => ((r.coldBootMs ?? NaN) / 1000).toFixed(2)).join(', ')} s, restore ${runs.domus.map((r) => (r.coldRestoreMs ?? NaN).toFixed(0)).join(', ')} ms.`,
    '',
  ].join('\n');
}
