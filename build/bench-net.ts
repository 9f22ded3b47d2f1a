// `npm run bench net`: guest → host through a NAT, side by side in one run. The anchor is QEMU's own
// user-mode network (`-netdev user`, slirp) with the same guest; then the same QEMU guest and a v86
// guest through Domus's NAT (the switch's gateway). Each guest fetches, with busybox wget, a 32 MiB
// file from an HTTP server this bench runs on the host's 127.0.0.1, through the gateway address
// (10.0.2.2 under slirp, 192.168.122.1 under Domus), timed by the guest's clock; and a 1-byte file 20
// times in a row for the latency of one request (TCP handshake, request, answer, close; wget's own
// start included alike). Traffic goes only to 127.0.0.1.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { findQemu } from '../main/host/drivers/qemu/binary.js';
import { SAMPLE_CMDLINE, SerialWatch, TestHost, engineSkip, guest, networkGuestXml, type LocalEngine } from '../main/testing/harness.js';
import { serialShell } from './bench-console.js';

export const NET_HEADING = '## Virtual networks';
const NAT_HEADING = '### NAT (guest → host)';

const BIG = 32 * 1024 * 1024;
const SMALL_RUNS = 20;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Figures {
  label: string;
  /** ms for the 32 MiB file, each run. */
  big: number[];
  /** ms per small request, each run. */
  small: number[];
}

/** One guest ready to fetch: its shell and the host as it sees it. */
interface Path {
  label: string;
  gateway: string;
  /** The guest's own address on its network. */
  ip: string;
  sh(cmd: string): Promise<string>;
  close(): Promise<void>;
}

/** The guest's clock around a command, in ms. */
async function clock(p: Path, cmd: string): Promise<number> {
  const out = await p.sh(`read a b </proc/uptime; ${cmd}; read c d </proc/uptime; echo "T$a:$c"`);
  const m = /T([\d.]+):([\d.]+)/.exec(out);
  if (!m) throw new Error(`${p.label}: no timing in ${out}`);
  return Math.round((Number(m[2]) - Number(m[1])) * 1000);
}

/** The sample guest under bare QEMU with `-netdev user` (slirp), its serial console on a unix socket. */
async function slirp(): Promise<Path> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-bench-slirp-'));
  const serialSocket = path.join(dir, 'serial.sock');
  const child = spawn(
    findQemu().path!,
    ['-accel', 'tcg', '-m', '128', '-kernel', guest('vmlinuz'), '-initrd', guest('initrd.gz'), '-append', SAMPLE_CMDLINE, '-display', 'none', '-nodefaults', '-monitor', 'none',
      '-serial', `unix:${serialSocket},server=on,wait=off`, '-netdev', 'user,id=n0', '-device', 'virtio-net-pci,netdev=n0'],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const close = async (): Promise<void> => {
    child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const serial = await serialShell(serialSocket, 'slirp guest');
    await serial.wait(/DOMUS-NET-UP eth0 10\.0\.2\.15/, 0, 600_000);
    return { label: 'QEMU `-netdev user` (slirp), virtio-net', gateway: '10.0.2.2', ip: '10.0.2.15', sh: (cmd) => serial.sh(cmd, 900_000), close };
  } catch (err) {
    await close();
    throw err;
  }
}

/** The same guest on Domus, its NIC on a NAT network. */
async function domus(t: TestHost, engine: LocalEngine, name = `bench-nat-${engine}`): Promise<Path> {
  await t.client.call('domain.define', { xml: networkGuestXml({ name, engine, network: 'default', model: 'virtio' }) });
  await t.client.call('domain.start', { domain: name });
  const close = async (): Promise<void> => {
    await t.client.call('domain.destroy', { domain: name });
  };
  try {
    const serial = await SerialWatch.open(t.client, name);
    const up = await serial.wait(/DOMUS-NET-UP eth0 ([\d.]+)\//, 900_000);
    return { label: `Domus NAT, ${engine === 'qemu' ? 'QEMU' : 'v86'} guest, virtio-net`, gateway: '192.168.122.1', ip: up[1]!, sh: (cmd) => serial.sh(cmd, 900_000), close };
  } catch (err) {
    await close();
    throw err;
  }
}

export async function netBench(): Promise<string> {
  const skip = engineSkip('qemu') || engineSkip('v86');
  if (skip) return `${NET_HEADING}\n\n${skip}\n`;
  const big = Buffer.alloc(BIG, 0x5a);
  const server = http.createServer((req, res) => {
    if (req.url === '/big') res.end(big);
    else if (req.url === '/small') res.end('x');
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const paths: Path[] = [];
  const t = await TestHost.start();
  try {
    // The host's first run defines libvirt's default NAT network (192.168.122.1/24) and starts it.
    paths.push(await slirp());
    paths.push(await domus(t, 'qemu'));
    paths.push(await domus(t, 'v86'));
    const peers = { qemu: await domus(t, 'qemu', 'bench-peer-qemu'), v86: await domus(t, 'v86', 'bench-peer-v86') };
    paths.push(peers.qemu, peers.v86);
    const url = (p: Path, file: string) => `http://${p.gateway}:${port}/${file}`;
    for (const p of paths) {
      const size = await p.sh(`wget -q -O - ${url(p, 'big')} | wc -c`);
      if (!size.includes(String(BIG))) throw new Error(`${p.label}: the guest got ${size.trim()} bytes instead of ${BIG}`);
    }
    // Interleaved, all guests up at once, so that the machine's load falls on each alike.
    const nat = paths.slice(0, 3);
    const rows: Figures[] = nat.map((p) => ({ label: p.label, big: [], small: [] }));
    const pairs: Pair[] = [
      { label: 'QEMU ↔ QEMU, virtio-net', from: paths[1]!, to: peers.qemu, mbps: [], rttMs: [] },
      { label: 'v86 ↔ v86, virtio-net', from: paths[2]!, to: peers.v86, mbps: [], rttMs: [] },
    ];
    for (let i = 0; i < RUNS; i++) {
      for (const pair of pairs) await guestToGuest(pair);
      for (const [k, p] of nat.entries()) {
        rows[k]!.big.push(await clock(p, `wget -q -O /dev/null ${url(p, 'big')}`));
        const total = await clock(p, `i=0; while [ $i -lt ${SMALL_RUNS} ]; do wget -q -O /dev/null ${url(p, 'small')}; i=$((i+1)); done`);
        rows[k]!.small.push(total / SMALL_RUNS);
      }
    }
    return `${report(rows)}\n${pairReport(pairs)}`;
  } finally {
    for (const p of paths) await p.close();
    await t.stop();
    server.close();
  }
}

/** Two Domus guests on one network, measured through the switch alone. */
interface Pair {
  label: string;
  from: Path;
  to: Path;
  /** MB/s of each TCP transfer. */
  mbps: number[];
  /** Average ping round trip of each run, ms. */
  rttMs: number[];
}

const G2G_HEADING = '### Guest to guest (through the switch)';
const G2G_BYTES = 4 * 1024 * 1024;
const PINGS = 20;

/** One TCP transfer (busybox nc, counted by the receiver) and one ping series between a pair. */
async function guestToGuest(pair: Pair): Promise<void> {
  const out = `/tmp/g2g-${Date.now()}`;
  // The listener keeps its stdin open: busybox nc closes the connection at stdin EOF.
  await pair.to.sh(`(sleep 600 | nc -l -p 5001 | wc -c > ${out} 2>/dev/null &)`);
  await new Promise((r) => setTimeout(r, 500));
  const ms = await clock(pair.from, `dd if=/dev/zero bs=64k count=${G2G_BYTES / 65536} 2>/dev/null | nc ${pair.to.ip} 5001`);
  let got = '';
  for (let i = 0; i < 60 && !got.includes(String(G2G_BYTES)); i++) {
    got = await pair.to.sh(`cat ${out} 2>/dev/null`);
    if (!got.includes(String(G2G_BYTES))) await new Promise((r) => setTimeout(r, 1000));
  }
  if (!got.includes(String(G2G_BYTES))) throw new Error(`${pair.label}: the receiver counted ${got.trim() || 'nothing'} instead of ${G2G_BYTES} bytes`);
  pair.mbps.push(G2G_BYTES / 1e6 / (ms / 1000));
  const ping = await pair.from.sh(`ping -c ${PINGS} -i 0.2 ${pair.to.ip} | tail -1`);
  const m = /= [\d.]+\/([\d.]+)\//.exec(ping);
  if (!m) throw new Error(`${pair.label}: no round trip in ${ping}`);
  pair.rttMs.push(Number(m[1]));
}

function pairReport(pairs: Pair[]): string {
  return [
    G2G_HEADING,
    '',
    `Measured by \`npm run bench net\` in the same run as the NAT figures, on the same guests: ${G2G_BYTES / 1024 / 1024} MiB from /dev/zero through busybox nc to a guest of the same engine on the same network (the receiver counts the bytes; timed by the sender's clock until nc returns), and busybox ping, ${PINGS} echoes 0.2 s apart, average round trip; median of ${RUNS}.`,
    '',
    '| pair | TCP throughput | ping round trip |',
    '|---|---|---|',
    ...pairs.map((p) => `| ${p.label} | ${median(p.mbps).toFixed(1)} MB/s | ${median(p.rttMs).toFixed(2)} ms |`),
    '',
    `Raw (MB/s / ms): ${pairs.map((p) => `${p.label}: ${p.mbps.map((v, i) => `${v.toFixed(1)}/${p.rttMs[i]!.toFixed(2)}`).join(', ')}`).join('; ')}.`,
    '',
  ].join('\n');
}

function report(rows: Figures[]): string {
  const [anchor] = rows;
  const mbs = (f: Figures) => BIG / 1e6 / (median(f.big) / 1000);
  return [
    NET_HEADING,
    '',
    NAT_HEADING,
    '',
    `Measured by \`npm run bench net\` on ${new Date().toISOString().slice(0, 10)} (${os.cpus().length} cores shared with other work, load average ${os.loadavg()[0]!.toFixed(1)} at the end, so ±30 % or worse): the i686 sample guest (128 MiB) fetches a 32 MiB file with busybox wget from an HTTP server on the host's 127.0.0.1 through its gateway address, timed by the guest's clock, median of ${RUNS}, the three guests running at once and measured in turn; latency is ${SMALL_RUNS} fetches of a 1-byte file in a row (a new TCP connection each, wget's start included), per fetch. QEMU ${findQemu().version ?? ''} with TCG; the anchor is QEMU's own slirp with the same guest.`,
    '',
    '| path | 32 MiB: time | throughput | vs slirp | one small fetch | vs slirp |',
    '|---|---|---|---|---|---|',
    ...rows.map((f) => `| ${f.label} | ${(median(f.big) / 1000).toFixed(2)} s | ${mbs(f).toFixed(1)} MB/s | ${(mbs(f) / mbs(anchor!)).toFixed(2)} | ${median(f.small).toFixed(0)} ms | ${(median(f.small) / median(anchor!.small)).toFixed(2)} |`),
    '',
    `Raw (32 MiB ms / small fetch ms): ${rows.map((f) => `${f.label.split(', virtio')[0]}: ${f.big.map((b, i) => `${b}/${f.small[i]!.toFixed(0)}`).join(', ')}`).join('; ')}.`,
    '',
  ].join('\n');
}
