// `npm run bench migrate`: live migration and snapshots, side by side in one run. Two Domus hosts on
// this machine (two homes, the destination named by its `domus uri`); the PV sample (128 MiB) on v86
// and on QEMU (TCG), each migrated idle and while it dirties memory (a 1 MiB random block copied 32
// times over a 32 MiB file in /dev/shm, in a loop), there and back. Per move: the guest's downtime
// and the total time as the engine reports them, and the bytes sent against the guest's non-zero RAM
// (counted in a memory-only core dump taken just before, by guest-physical page). Then a snapshot of
// the running guest, taken and reverted.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { MigrationOutcome } from '../shared/api.js';
import { SerialWatch, TestHost, engineSkip, sampleGuestXml, type LocalEngine } from '../main/testing/harness.js';

export const MIGRATE_HEADING = '## Live migration and snapshots';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const PAGE = 4096;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mib = (n: number): string => (n / 1024 / 1024).toFixed(1);

const DIRTY = [
  'grep -q " /dev/shm " /proc/mounts || { mkdir -p /dev/shm; mount -t tmpfs -o size=48m tmpfs /dev/shm; }',
  'dd if=/dev/urandom of=/dev/shm/r bs=1024 count=1024 2>/dev/null',
  `(while true; do for j in ${Array.from({ length: 32 }, (_, i) => i + 1).join(' ')}; do cat /dev/shm/r; done > /dev/shm/w; echo dirty-round; done) & true`,
].join('; ');

/** Distinct guest-physical pages with a non-zero byte in an ELF core (PT_LOADs may map a page twice). */
function nonZeroBytes(core: string): number {
  const b = fs.readFileSync(core);
  const wide = b[4] === 2;
  const phoff = wide ? Number(b.readBigUInt64LE(32)) : b.readUInt32LE(28);
  const phentsize = b.readUInt16LE(wide ? 54 : 42);
  const phnum = b.readUInt16LE(wide ? 56 : 44);
  const pages = new Set<number>();
  for (let i = 0; i < phnum; i++) {
    const h = phoff + i * phentsize;
    if (b.readUInt32LE(h) !== 1) continue;
    const num = (o32: number, o64: number): number => (wide ? Number(b.readBigUInt64LE(h + o64)) : b.readUInt32LE(h + o32));
    const [offset, paddr, filesz] = [num(4, 8), num(12, 24), num(16, 32)];
    for (let off = 0; off + PAGE <= filesz; off += PAGE) {
      const page = b.subarray(offset + off, offset + off + PAGE);
      if (page.some((x) => x !== 0)) pages.add(paddr + off);
    }
  }
  return pages.size * PAGE;
}

interface Row {
  label: string;
  downtime: number[];
  total: number[];
  sent: number[];
  nonZero: number[];
  postcopy: boolean;
}

interface Guest {
  engine: LocalEngine;
  name: string;
  /** The host it runs on now. */
  on: TestHost;
}

export async function migrateBench(): Promise<string> {
  const engines = (['v86', 'qemu'] as const).filter((e) => !engineSkip(e));
  if (!engines.length) return `${MIGRATE_HEADING}\n\n${engineSkip('v86')}\n`;
  const [a, b] = await Promise.all([TestHost.start(), TestHost.start()]);
  const uri = new Map<TestHost, string>();
  for (const h of [a, b]) uri.set(h, (await h.client.call('host.uri', {})).uri);
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-bench-migrate-'));
  const rows: Row[] = [];
  const snapshots: { engine: string; create: number[]; revert: number[] }[] = [];
  try {
    const guests: Guest[] = [];
    for (const engine of engines) {
      const name = `bench-mig-${engine}`;
      // QEMU keeps a running guest's snapshot in a qcow2 disk (on the storage both hosts share here).
      let disk = '';
      if (engine === 'qemu') {
        const file = path.join(scratch, `${name}.qcow2`);
        execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', file, '64M']);
        disk = `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${file}'/><target dev='vda' bus='virtio'/></disk>`;
      }
      await a.client.call('domain.define', { xml: sampleGuestXml(name, engine, disk) });
      await a.client.call('domain.start', { domain: name });
      await (await SerialWatch.open(a.client, name)).wait(/DOMUS-GUEST-READY/, 600_000);
      guests.push({ engine, name, on: a });
    }
    const move = async (g: Guest, postcopy: boolean): Promise<{ outcome: MigrationOutcome; nonZero: number }> => {
      const core = path.join(scratch, `${g.name}.core`);
      await g.on.client.call('domain.coreDump', { domain: g.name, file: core, live: true });
      const nonZero = nonZeroBytes(core);
      fs.rmSync(core);
      const to = g.on === a ? b : a;
      const r = await g.on.client.call('domain.migrate', { domain: g.name, destination: uri.get(to)!, live: true, postcopy });
      g.on = to;
      return { outcome: r.result, nonZero };
    };
    const modes = (engine: LocalEngine): { label: string; postcopy: boolean }[] =>
      engine === 'v86' ? [{ label: 'pre-copy', postcopy: false }] : [{ label: 'post-copy', postcopy: true }, { label: 'as chosen without --postcopy', postcopy: false }];
    for (const workload of ['idle', 'dirtying'] as const) {
      if (workload === 'dirtying') for (const g of guests) await (await SerialWatch.open(g.on.client, g.name)).sh(DIRTY, 120_000);
      for (const g of guests) {
        for (const m of modes(g.engine)) {
          const row: Row = { label: `${g.engine === 'v86' ? 'v86' : 'QEMU (TCG)'} ${m.label}, ${workload}`, downtime: [], total: [], sent: [], nonZero: [], postcopy: false };
          for (let i = 0; i < RUNS; i++) {
            const { outcome, nonZero } = await move(g, m.postcopy);
            row.downtime.push(outcome.downtimeMs);
            row.total.push(outcome.totalMs);
            row.sent.push(outcome.transferredBytes);
            row.nonZero.push(nonZero);
            row.postcopy = outcome.postcopy;
          }
          rows.push(row);
        }
      }
    }
    for (const g of guests) {
      const times = { engine: g.engine, create: [] as number[], revert: [] as number[] };
      for (let i = 0; i < RUNS; i++) {
        let t0 = performance.now();
        await g.on.client.call('snapshot.create', { domain: g.name, name: `s${i}` });
        times.create.push(performance.now() - t0);
        t0 = performance.now();
        await g.on.client.call('snapshot.revert', { domain: g.name, snapshot: `s${i}` });
        times.revert.push(performance.now() - t0);
      }
      snapshots.push(times);
    }
  } finally {
    await Promise.all([a.stop(), b.stop()]);
    fs.rmSync(scratch, { recursive: true, force: true });
  }
  return report(rows, snapshots);
}

function report(rows: Row[], snapshots: { engine: string; create: number[]; revert: number[] }[]): string {
  const lines = [
    MIGRATE_HEADING,
    '',
    `Measured by \`npm run bench migrate\` on ${new Date().toISOString().slice(0, 10)} (${os.cpus().length} cores; load average ${os.loadavg()[0].toFixed(1)} at the end). Two Domus hosts on this machine, the PV sample (128 MiB) moved there and back ${RUNS} times per row, median. Downtime and total time are the engine's own figures; non-zero RAM is counted by guest-physical page in a memory-only core taken just before each move. Dirtying: a 1 MiB random block copied 32 times over a 32 MiB file in /dev/shm, in a loop.`,
    '',
    '| what | downtime | total | sent | non-zero RAM | sent / non-zero |',
    '|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const ratio = median(r.sent) / median(r.nonZero);
    lines.push(`| ${r.label}${r.postcopy ? ' (post-copy used)' : ''} | ${median(r.downtime)} ms | ${(median(r.total) / 1000).toFixed(2)} s | ${mib(median(r.sent))} MiB | ${mib(median(r.nonZero))} MiB | ${ratio.toFixed(2)} |`);
  }
  lines.push('', '| snapshot of the running guest | create | revert |', '|---|---|---|');
  for (const s of snapshots) lines.push(`| ${s.engine === 'v86' ? 'v86' : 'QEMU (TCG)'} | ${Math.round(median(s.create))} ms | ${Math.round(median(s.revert))} ms |`);
  lines.push('', `Raw downtimes (ms): ${rows.map((r) => `${r.label}: ${r.downtime.join(', ')}`).join('; ')}.`);
  return `${lines.join('\n')}\n`;
}
