// KVM or TCG. /dev/kvm opening and query-kvm saying "enabled" prove nothing: on a nested PVM host
// (docs: shared notes, qemu.md §1) a stock kernel runs ~400x slower under KVM or dies. So KVM counts
// as usable only when a probe guest really boots under it, faster than under TCG. The answer is
// cached in the data dir, keyed by the QEMU version, the host kernel and the probe guest.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeFileAtomic } from '../../../common/fsutil.js';
import { log } from '../../log.js';
import { GUEST_DIR } from '../../new-vm/samples.js';

import type { AccelMode } from '../driver.js';

export type { AccelMode };

export interface AccelState {
  mode: AccelMode;
  /** null: not probed yet (or nothing to probe with). */
  kvmUsable: boolean | null;
  using: 'kvm' | 'tcg';
  reason?: string;
}

interface ProbeResult {
  key: string;
  usable: boolean;
  reason: string;
  at: string;
}

/** A real KVM boots the probe guest in about a second; this is generous for a loaded machine. */
const KVM_DEADLINE_MS = Number(process.env.DOMUS_KVM_PROBE_DEADLINE_MS ?? 8000);
const TCG_DEADLINE_MS = 120_000;
const BANNER = 'DOMUS-GUEST-READY';

export class Accel {
  private probing?: Promise<ProbeResult>;

  constructor(private readonly home: string) {}

  get mode(): AccelMode {
    try {
      const m = (JSON.parse(fs.readFileSync(this.modeFile, 'utf8')) as { mode?: AccelMode }).mode;
      return m === 'kvm' || m === 'tcg' ? m : 'auto';
    } catch {
      return 'auto';
    }
  }

  setMode(mode: AccelMode): void {
    writeFileAtomic(this.modeFile, `${JSON.stringify({ mode })}\n`, 0o600);
  }

  /** What a KVM domain would use now, without probing. */
  state(qemuVersion: string | undefined): AccelState {
    const mode = this.mode;
    const cached = qemuVersion ? this.cached(qemuVersion) : undefined;
    const kvmUsable = cached ? cached.usable : null;
    if (mode === 'kvm') return { mode, kvmUsable, using: 'kvm', reason: 'KVM forced by host.setAccel' };
    if (mode === 'tcg') return { mode, kvmUsable, using: 'tcg', reason: 'TCG forced by host.setAccel' };
    if (!cached) return { mode, kvmUsable, using: 'tcg', reason: 'KVM not probed yet (the first KVM domain start runs the probe)' };
    return { mode, kvmUsable, using: cached.usable ? 'kvm' : 'tcg', reason: cached.reason };
  }

  /** Runs the probe when the cache has no answer for this QEMU and host; one probe at a time. */
  async resolve(qemu: string, qemuVersion: string): Promise<AccelState> {
    if (this.mode === 'auto' && !this.cached(qemuVersion)) {
      this.probing ??= this.probe(qemu, qemuVersion).finally(() => (this.probing = undefined));
      await this.probing;
    }
    return this.state(qemuVersion);
  }

  private get modeFile(): string {
    return path.join(this.home, 'qemu-accel.json');
  }

  private get cacheFile(): string {
    return path.join(this.home, 'kvm-probe.json');
  }

  private key(qemuVersion: string): string {
    const kernel = path.join(GUEST_DIR, 'vmlinuz');
    const size = fs.existsSync(kernel) ? fs.statSync(kernel).size : 0;
    return `qemu ${qemuVersion}; host ${os.release()}; probe kernel ${size}`;
  }

  private cached(qemuVersion: string): ProbeResult | undefined {
    try {
      const r = JSON.parse(fs.readFileSync(this.cacheFile, 'utf8')) as ProbeResult;
      return r.key === this.key(qemuVersion) ? r : undefined;
    } catch {
      return undefined;
    }
  }

  private async probe(qemu: string, qemuVersion: string): Promise<ProbeResult> {
    const key = this.key(qemuVersion);
    const finish = (usable: boolean, reason: string): ProbeResult => {
      const r = { key, usable, reason, at: new Date().toISOString() };
      writeFileAtomic(this.cacheFile, `${JSON.stringify(r, null, 2)}\n`, 0o600);
      log('info', `KVM probe: ${usable ? 'usable' : 'not usable'}: ${reason}`);
      return r;
    };
    try {
      fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
    } catch (err) {
      return finish(false, `/dev/kvm cannot be opened (${(err as NodeJS.ErrnoException).code}); guests run with TCG`);
    }
    const kernel = path.join(GUEST_DIR, 'vmlinuz');
    const initrd = path.join(GUEST_DIR, 'initrd.gz');
    if (!fs.existsSync(kernel) || !fs.existsSync(initrd)) {
      return finish(false, `no probe guest (${kernel}, ${initrd}; run \`npm run guests\`), so KVM is not trusted; guests run with TCG`);
    }
    const kvm = await bootProbe(qemu, ['-accel', 'kvm', '-cpu', 'host,-arch-capabilities'], kernel, initrd, KVM_DEADLINE_MS);
    if (!kvm.ms) {
      return finish(false, `/dev/kvm is present but the probe guest did not boot under KVM within ${KVM_DEADLINE_MS / 1000} s (${kvm.why}); guests run with TCG`);
    }
    const tcg = await bootProbe(qemu, ['-accel', 'tcg'], kernel, initrd, TCG_DEADLINE_MS);
    if (tcg.ms && kvm.ms >= tcg.ms) {
      return finish(false, `the probe guest boots slower under KVM (${kvm.ms} ms) than under TCG (${tcg.ms} ms); guests run with TCG`);
    }
    return finish(true, `the probe guest booted under KVM in ${kvm.ms} ms (TCG: ${tcg.ms ? `${tcg.ms} ms` : tcg.why})`);
  }
}

/** Boots the sample kernel until its banner; returns the time, or why it did not get there. */
function bootProbe(qemu: string, accel: string[], kernel: string, initrd: string, deadlineMs: number): Promise<{ ms?: number; why: string }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawn(
      qemu,
      [
        '-machine', 'pc', ...accel, '-m', '128', '-nodefaults', '-no-user-config', '-display', 'none',
        '-serial', 'stdio', '-no-reboot', '-kernel', kernel, '-initrd', initrd,
        '-append', 'console=ttyS0,115200 panic=-1 mitigations=off',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    let done = false;
    const end = (r: { ms?: number; why: string }): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      child.kill('SIGKILL');
      resolve(r);
    };
    const timer = setTimeout(() => end({ why: 'deadline passed' }), deadlineMs);
    child.stdout.on('data', (d: Buffer) => {
      out = (out + d.toString('latin1')).slice(-4096);
      if (out.includes(BANNER)) end({ ms: Date.now() - t0, why: 'booted' });
    });
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-2048)));
    child.on('exit', (code, signal) => end({ why: `QEMU exited (${signal ?? `code ${code}`}): ${err.trim().split('\n').pop() ?? ''}` }));
    child.on('error', (e) => end({ why: e.message }));
  });
}
