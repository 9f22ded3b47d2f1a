// `npm run bench libvirt`: Domus's libvirt driver against Debian's virsh, side by side on one private
// libvirtd (main/testing/libvirtd.ts) with 50 small shut-off domains defined:
//  - listing the 50: domain.list through a Domus host with the connection open, `domus -c URI list
//    --all`, and `virsh -c URI list --all`;
//  - 1000 dominfo calls: domain.info in sequence over one API client vs one virsh process running
//    1000 dominfo commands in one session (so process start-up is not what is measured); and one
//    process per dominfo for both CLIs;
//  - `virsh define` on the host until the domain.defined event reaches a Domus client.
import fs from 'node:fs';
import path from 'node:path';
import type { Events } from '../shared/api.js';
import { runCli, TestHost } from '../main/testing/harness.js';
import { libvirtdSkip, runVirsh, startLibvirtd, type Libvirtd } from '../main/testing/libvirtd.js';

export const LIBVIRT_HEADING = '## libvirt connection';

const DOMAINS = 50;
const LIST_RUNS = 15;
/** Lists in one virsh session, so that its start-up is spread thin. */
const SESSION_LISTS = 100;
const CLI_RUNS = 7;
const DOMINFO_CALLS = 1000;
const PER_PROCESS_RUNS = 10;
const DEFINE_RUNS = 20;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x: number): string => (x < 10 ? x.toFixed(2) : x.toFixed(0));

const domainXml = (name: string): string =>
  `<domain type='qemu'><name>${name}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>` +
  `<os><type arch='x86_64' machine='pc'>hvm</type></os><devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices></domain>`;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

/** virsh's run, refused when it failed (a benchmark of failures measures nothing). */
async function virsh(daemon: Libvirtd, ...args: string[]): Promise<string> {
  const r = await runVirsh(daemon.uri, args, 300_000);
  if (r.code !== 0) throw new Error(`virsh ${args.join(' ').slice(0, 80)} failed: ${r.stderr}`);
  return r.stdout;
}

async function cli(t: TestHost, uri: string, ...args: string[]): Promise<string> {
  const r = await runCli(t.home, ['-c', uri, ...args]);
  if (r.code !== 0) throw new Error(`domus -c ${uri} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

interface Figures {
  listApi: number[];
  listCli: number[];
  listVirsh: number[];
  /** One virsh session running SESSION_LISTS lists, per list. */
  listVirshSession: number;
  dominfoApiMs: number;
  dominfoVirshMs: number;
  dominfoCliProcess: number[];
  dominfoVirshProcess: number[];
  defineEvent: number[];
  defineVirsh: number[];
}

async function measure(daemon: Libvirtd, t: TestHost): Promise<Figures> {
  const uri = daemon.uri;
  const names = Array.from({ length: DOMAINS }, (_, i) => `bench-${String(i).padStart(2, '0')}`);
  for (const name of names) fs.writeFileSync(path.join(daemon.dir, `${name}.xml`), domainXml(name));
  await virsh(daemon, names.map((n) => `define ${path.join(daemon.dir, `${n}.xml`)}`).join(' ; '));
  const onConn = { connection: uri };

  // Warm-up: each side's first call pays for things the others are not measured on.
  const { domains } = await t.client.call('domain.list', { all: true }, onConn);
  if (domains.length !== DOMAINS) throw new Error(`Domus lists ${domains.length} domains, not ${DOMAINS}`);
  await virsh(daemon, 'list', '--all');

  const f: Figures = { listApi: [], listCli: [], listVirsh: [], listVirshSession: 0, dominfoApiMs: 0, dominfoVirshMs: 0, dominfoCliProcess: [], dominfoVirshProcess: [], defineEvent: [], defineVirsh: [] };
  // Interleaved so that the machine's load hits every side alike.
  for (let i = 0; i < LIST_RUNS; i++) {
    f.listApi.push(await timed(() => t.client.call('domain.list', { all: true }, onConn)));
    f.listVirsh.push(await timed(() => virsh(daemon, 'list', '--all')));
    if (i < CLI_RUNS) {
      let out = '';
      f.listCli.push(await timed(async () => (out = await cli(t, uri, 'list', '--all'))));
      if (names.some((n) => !out.includes(n))) throw new Error(`domus list --all missed domains:\n${out}`);
    }
  }
  f.listVirshSession = (await timed(() => virsh(daemon, Array.from({ length: SESSION_LISTS }, () => 'list --all').join(' ; ')))) / SESSION_LISTS;

  const order = Array.from({ length: DOMINFO_CALLS }, (_, i) => names[i % DOMAINS]);
  f.dominfoApiMs = await timed(async () => {
    for (const name of order) await t.client.call('domain.info', { domain: name }, onConn);
  });
  let out = '';
  f.dominfoVirshMs = await timed(async () => (out = await virsh(daemon, order.map((n) => `dominfo ${n}`).join(' ; '))));
  const answered = out.match(/^Name:/gm)?.length ?? 0;
  if (answered !== DOMINFO_CALLS) throw new Error(`virsh answered ${answered} dominfo commands of ${DOMINFO_CALLS}`);
  for (let i = 0; i < PER_PROCESS_RUNS; i++) {
    f.dominfoVirshProcess.push(await timed(() => virsh(daemon, 'dominfo', names[i])));
    if (i < CLI_RUNS) f.dominfoCliProcess.push(await timed(() => cli(t, uri, 'dominfo', names[i])));
  }

  // virsh define on the host → domain.defined at a Domus client; each one undefined again before the next.
  const file = path.join(daemon.dir, 'appear.xml');
  for (let i = 0; i < DEFINE_RUNS; i++) {
    const name = `appear-${i}`;
    fs.writeFileSync(file, domainXml(name));
    const seen = new Promise<number>((resolve) => {
      const off = t.client.on('domain.defined', (d: Events['domain.defined'], connection) => {
        if (connection !== uri || d.domain.name !== name) return;
        off();
        resolve(performance.now());
      });
    });
    const t0 = performance.now();
    f.defineVirsh.push(await timed(() => virsh(daemon, 'define', file)));
    f.defineEvent.push((await seen) - t0);
    await virsh(daemon, 'undefine', name);
  }
  return f;
}

export async function libvirtBench(): Promise<string> {
  const skip = libvirtdSkip();
  if (skip) return `${LIBVIRT_HEADING}\n\n${skip}\n`;
  const daemon = await startLibvirtd();
  let t: TestHost | undefined;
  let f: Figures;
  let version = '';
  try {
    // libvirtd probes QEMU's capabilities at the first QEMU domain (~30 s under TCG): not measured.
    await virsh(daemon, 'domcapabilities', '--virttype', 'qemu');
    const v = await virsh(daemon, 'version');
    version = `${v.match(/Using library: (.*)/)?.[1] ?? 'libvirt'}, ${v.match(/Running hypervisor: (.*)/)?.[1] ?? 'QEMU'} (TCG)`;
    t = await TestHost.start();
    await t.client.call('connection.open', { uri: daemon.uri });
    f = await measure(daemon, t);
  } finally {
    await t?.stop();
    await daemon.stop();
  }
  const [api, domusCli, vlist] = [median(f.listApi), median(f.listCli), median(f.listVirsh)];
  const perApi = f.dominfoApiMs / DOMINFO_CALLS;
  const perVirsh = f.dominfoVirshMs / DOMINFO_CALLS;
  const [cliProc, virshProc] = [median(f.dominfoCliProcess), median(f.dominfoVirshProcess)];
  const [event, vdefine] = [median(f.defineEvent), median(f.defineVirsh)];
  return [
    LIBVIRT_HEADING,
    '',
    `Measured by \`npm run bench libvirt\` on ${new Date().toISOString().slice(0, 10)}: one private libvirtd (${version}, unix socket) with ${DOMAINS} shut-off QEMU domains defined; Domus's libvirt driver (a Domus host with the connection open, its API over the host's unix socket) against Debian's virsh (libvirt's C client) in the same run, interleaved. The machine is shared with other work, so figures are ±30 %.`,
    '',
    '| what | virsh | Domus | Domus / virsh |',
    '|---|---|---|---|',
    `| list of ${DOMAINS} domains, one call in a running client (median of ${LIST_RUNS}) | one virsh session running ${SESSION_LISTS} lists: ${ms(f.listVirshSession)} ms each | API domain.list: ${ms(api)} ms | ${(api / f.listVirshSession).toFixed(2)} |`,
    `| list of ${DOMAINS} domains as a command line, median of ${LIST_RUNS} (domus: ${CLI_RUNS}) | \`virsh list --all\`: ${ms(vlist)} ms | \`domus -c URI list --all\`: ${ms(domusCli)} ms | ${(domusCli / vlist).toFixed(2)} |`,
    `| ${DOMINFO_CALLS} dominfo in sequence, one client | one virsh session: ${ms(f.dominfoVirshMs)} ms (${ms(perVirsh)} ms each) | API domain.info over one client: ${ms(f.dominfoApiMs)} ms (${ms(perApi)} ms each) | ${(f.dominfoApiMs / f.dominfoVirshMs).toFixed(2)} |`,
    `| one dominfo per process, median of ${PER_PROCESS_RUNS} (domus: ${CLI_RUNS}) | \`virsh dominfo\`: ${ms(virshProc)} ms | \`domus -c URI dominfo\`: ${ms(cliProc)} ms | ${(cliProc / virshProc).toFixed(2)} |`,
    `| \`virsh define\` on the host → domain.defined at a Domus client, median of ${DEFINE_RUNS} | the virsh process: ${ms(vdefine)} ms | event ${ms(event)} ms after virsh started (virsh itself exited after ${ms(vdefine)} ms) | |`,
    '',
    `Raw (ms): list API ${f.listApi.map(ms).join(', ')}; list domus CLI ${f.listCli.map(ms).join(', ')}; list virsh ${f.listVirsh.map(ms).join(', ')}; define → event ${f.defineEvent.map(ms).join(', ')}.`,
    '',
  ].join('\n');
}
