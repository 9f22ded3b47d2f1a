// Clone, as virt-clone does it: a new domain from an existing one's next-boot definition with a new
// name, UUID and MACs. Writable disks are copied (a job on the original, with progress and abort);
// CD-ROMs and read-only disks are shared. Names follow virt-clone's: "web-clone", "web-clone1"…
// for the domain, the original's file name with the domain's new name (or "-clone") for a disk.
import { randomBytes, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { CloneDisk, CloneResult, DomainSummary, JobInfo } from '../../../shared/api.js';
import { childElements, editDomain, firstChild, newMac, parseDomainXml, serializeDomainXml, setName, type DomainDocument } from '../domain/xml.js';
import { setText } from '../domain/xml-tree.js';
import { systemErrorText } from '../../common/fsutil.js';
import { HostError, invalidArg, operationFailed, operationInvalid } from '../errors.js';
import type { Lifecycle } from '../lifecycle.js';
import { log } from '../log.js';
import type { DomainRecord, DomainRegistry } from '../registry.js';
import { cloneImage, CopyAborted, ImageError } from '../storage/image.js';
import { JobError, JobHandle, type Jobs } from './tracker.js';

export interface CloneRequest {
  name?: string;
  uuid?: string;
  macs: string[];
  files: string[];
  skipCopy: string[];
  pause: boolean;
  dryRun: boolean;
}

export class Cloner {
  constructor(
    private readonly registry: DomainRegistry,
    private readonly lifecycle: Lifecycle,
    private readonly jobs: Jobs,
    /** Defines the new domain (the host's define: events, validation, clash checks). */
    private readonly define: (xml: string) => { domain: DomainSummary },
    /** Where UEFI variable stores live when a definition's <nvram> names no file (<uuid>_VARS.fd). */
    private readonly nvramDir: string,
  ) {}

  async clone(ref: string, req: CloneRequest): Promise<CloneResult> {
    const rec = this.registry.lookup(ref);
    const plan = this.plan(rec, req);
    if (req.dryRun) return plan.result;
    const copies = plan.result.disks.filter((d) => d.action === 'copy');
    let resumed = false;
    if (copies.length && rec.live && rec.state !== 'paused') {
      if (!req.pause) {
        throw operationInvalid(
          `domain '${rec.doc.config.name}' is running: its disks cannot be copied while the guest writes them; pause it (suspend) or shut it off first, or let clone pause it for the copy (--pause)`,
        );
      }
      await this.lifecycle.suspend(ref);
      resumed = true;
    }
    const resume = async (): Promise<void> => {
      if (resumed && this.registry.get(rec.doc.config.uuid)?.state === 'paused') await this.lifecycle.resume(ref);
    };
    let copied;
    try {
      copied = await this.copy(rec, copies);
    } catch (err) {
      await resume();
      throw err;
    }
    if (!(copied instanceof JobHandle)) {
      await resume();
      return { ...plan.result, job: copied };
    }
    // The job ends once the clone is defined and the original runs again: a client that takes its
    // completion as the clone's finds both done.
    let domain: DomainSummary;
    try {
      const made = copies.map((d) => d.file);
      if (plan.nvram) made.push(copyNvram(plan.nvram, copies));
      ({ domain } = this.defineOrRemove(plan.doc, made));
    } catch (err) {
      copied.finish('failed', (err as Error).message);
      await resume();
      throw err;
    }
    // The clone is made whatever happens next: a failed resume is reported, not thrown, or the
    // caller would lose the clone's answer (and a retry would find its name taken).
    let resumeFailed = false;
    await resume().catch((err: Error) => {
      resumeFailed = true;
      log('warn', `domain '${rec.doc.config.name}': cloned to '${domain.name}', but could not be resumed: ${err.message}`);
    });
    const job = copied.finish('completed');
    return { ...plan.result, domain, job, resumed: resumed ? !resumeFailed : undefined };
  }

  private plan(rec: DomainRecord, req: CloneRequest): { doc: DomainDocument; nvram?: NvramCopy; result: CloneResult } {
    const original = rec.doc;
    const name = req.name ?? this.cloneName(original.config.name);
    // Checked before anything is copied: the name also names the clone's disk files.
    if (name !== name.trim() || name.includes('/') || name === '.' || name === '..') {
      throw invalidArg(`cannot name the clone '${name}': a domain name cannot contain '/', be '.' or '..', or start or end with a space`);
    }
    if (this.registry.records().some((r) => r.doc.config.name === name)) throw invalidArg(`cannot name the clone '${name}': a domain of that name already exists`);
    const uuid = (req.uuid ?? randomUUID()).toLowerCase();
    if (this.registry.get(uuid)) throw invalidArg(`cannot give the clone UUID ${uuid}: domain '${this.registry.get(uuid)!.doc.config.name}' has it`);
    for (const target of req.skipCopy) {
      if (!original.config.disks.some((d) => d.target === target)) throw invalidArg(`no disk '${target}' to skip in domain '${original.config.name}'`);
    }
    const doc = parseDomainXml(serializeDomainXml(original));
    setName(doc, name);
    editDomain(doc, (root) => setText(firstChild(root, 'uuid')!, uuid));
    this.newMacs(doc, req.macs);
    autoportGraphics(doc);
    const nvram = this.planNvram(original, doc, name, uuid);
    const disks = this.planDisks(original, name, req);
    editDomain(doc, (root) => {
      const elements = childElements(firstChild(root, 'devices')!, 'disk');
      for (const disk of disks.filter((d) => d.action === 'copy')) {
        const el = elements.find((e) => firstChild(e, 'target')?.attributes.dev === disk.target)!;
        firstChild(el, 'source')!.attributes.file = disk.file;
      }
    });
    return { doc, nvram, result: { name, uuid, disks } };
  }

  /**
   * virt-clone's nvram step: the clone gets its own copy of the original's UEFI variable store
   * (boot entries, Secure Boot keys). A store named in <nvram> is copied beside it as
   * NAME_VARS.fd; an implicit one (<uuid>_VARS.fd) under the clone's new UUID. None yet: nothing to copy.
   */
  private planNvram(original: DomainDocument, doc: DomainDocument, name: string, uuid: string): NvramCopy | undefined {
    const nvram = original.config.os.nvram;
    if (original.config.os.firmware !== 'efi' && !nvram) return undefined;
    const source = nvram?.path ?? path.join(this.nvramDir, `${original.config.uuid}_VARS.fd`);
    if (!fs.existsSync(source)) return undefined;
    if (!nvram?.path) return { source, file: path.join(this.nvramDir, `${uuid}_VARS.fd`) };
    const file = path.join(path.dirname(source), `${name}_VARS.fd`);
    if (fs.existsSync(file)) throw invalidArg(`cannot copy the UEFI variable store to '${file}': the file already exists`);
    editDomain(doc, (root) => setText(firstChild(firstChild(root, 'os')!, 'nvram')!, file));
    return { source, file };
  }

  /** virt-clone's generate_clone_name: "web" → "web-clone", then "web-clone1", "web-clone2"… */
  private cloneName(original: string): string {
    const taken = new Set(this.registry.records().map((r) => r.doc.config.name));
    const m = /-clone([1-9][0-9]*)?$/.exec(original);
    const base = `${m ? original.slice(0, m.index) : original}-clone`;
    let n = m?.[1] ? Number(m[1]) + 1 : 0;
    while (taken.has(n ? `${base}${n}` : base)) n++;
    return n ? `${base}${n}` : base;
  }

  /** Every <interface> gets a new MAC: the given ones in order, then fresh ones no domain here has. */
  private newMacs(doc: DomainDocument, given: string[]): void {
    const count = doc.config.interfaces.length;
    if (given.length > count) throw invalidArg(`${given.length} MAC addresses given, but the domain has ${count} network interface${count === 1 ? '' : 's'}`);
    const taken = new Set(this.registry.records().flatMap((r) => [...r.doc.config.interfaces, ...(r.liveDoc?.config.interfaces ?? [])].map((i) => i.mac?.toLowerCase())));
    for (const mac of given) if (taken.has(mac.toLowerCase())) throw invalidArg(`MAC address ${mac} is already used by a domain here`);
    editDomain(doc, (root) => {
      childElements(firstChild(root, 'devices')!, 'interface').forEach((iface, i) => {
        const mac = given[i]?.toLowerCase() ?? newMac(taken, () => randomBytes(3));
        taken.add(mac);
        const el = firstChild(iface, 'mac');
        if (el) el.attributes.address = mac;
      });
    });
  }

  private planDisks(original: DomainDocument, name: string, req: CloneRequest): CloneDisk[] {
    const planned = new Set<string>();
    let next = 0;
    const disks = original.config.disks.flatMap((d): CloneDisk[] => {
      if (!d.source) return [];
      const base = { target: d.target, device: d.device, source: d.source };
      // v86's IDE disks have no read-only mode (storage/in-use.ts), so there a <readonly/> disk is
      // written by the guest and is copied like any other.
      const readOnly = d.device === 'cdrom' || (d.readonly && original.config.type !== 'v86');
      if (readOnly || req.skipCopy.includes(d.target)) return [{ ...base, action: 'share', file: d.source, bytes: 0 }];
      const given = req.files[next++];
      const file = given !== undefined ? path.resolve(given) : diskCloneName(d.source, original.config.name, name, planned);
      planned.add(file);
      return [{ ...base, action: 'copy', file, bytes: sourceSize(d.source) }];
    });
    if (req.files.length > next) throw invalidArg(`${req.files.length} disk paths given, but the domain has ${next} disk${next === 1 ? '' : 's'} to copy`);
    for (const disk of disks.filter((d) => d.action === 'copy')) {
      if (fs.existsSync(disk.file)) throw invalidArg(`cannot clone disk '${disk.target}' to '${disk.file}': the file already exists`);
      if (!fs.existsSync(path.dirname(disk.file))) throw invalidArg(`cannot clone disk '${disk.target}' to '${disk.file}': no directory '${path.dirname(disk.file)}'`);
    }
    if (planned.size !== disks.filter((d) => d.action === 'copy').length) throw invalidArg('two disks cannot be cloned to the same file');
    return disks;
  }

  /**
   * Copies the disks as one job on the original; an aborted or failed copy leaves no file behind.
   * Copied, the job is handed back still running, for the caller to finish.
   */
  private async copy(rec: DomainRecord, copies: CloneDisk[]): Promise<JobHandle | JobInfo> {
    const abort = new AbortController();
    let job;
    let copied = false;
    try {
      job = this.jobs.begin(rec.doc.config.uuid, rec.doc.config.name, 'clone', async () => {
        // What is left (the definition, resuming the original) is not undone.
        if (copied) throw operationInvalid(`the disks of '${rec.doc.config.name}' are copied: its clone can no longer be aborted`);
        abort.abort();
      });
    } catch (err) {
      if (err instanceof JobError) throw operationInvalid(err.message);
      throw err;
    }
    const total = copies.reduce((n, d) => n + d.bytes, 0);
    let before = 0;
    const made: string[] = [];
    try {
      job.progress(0, total);
      for (const disk of copies) {
        // An abort that came after the last chunk of the disk before is still an abort.
        if (abort.signal.aborted) throw new CopyAborted();
        await cloneImage(disk.source, disk.file, { signal: abort.signal, onProgress: (done) => job.progress(before + done, total) });
        made.push(disk.file);
        before += disk.bytes;
      }
      if (abort.signal.aborted) throw new CopyAborted();
      copied = true;
      return job;
    } catch (err) {
      for (const file of made) fs.rmSync(file, { force: true });
      if (err instanceof CopyAborted) return job.finish('aborted', 'job aborted by the user');
      const info = job.finish('failed', (err as Error).message);
      if (err instanceof ImageError) throw new HostError(err.kind === 'io' ? 'SYSTEM_ERROR' : 'OPERATION_FAILED', `clone of '${rec.doc.config.name}' failed: ${info.error}`);
      throw operationFailed(`clone of '${rec.doc.config.name}' failed: ${info.error}`);
    }
  }

  private defineOrRemove(doc: DomainDocument, made: string[]): { domain: DomainSummary } {
    try {
      return this.define(serializeDomainXml(doc));
    } catch (err) {
      for (const file of made) fs.rmSync(file, { force: true });
      throw err;
    }
  }
}

interface NvramCopy {
  source: string;
  file: string;
}

/** Copies the variable store (small: a few MiB at most); a failure removes the disks already copied. */
function copyNvram(nvram: NvramCopy, copies: CloneDisk[]): string {
  try {
    fs.copyFileSync(nvram.source, nvram.file, fs.constants.COPYFILE_EXCL);
  } catch (err) {
    for (const disk of copies) fs.rmSync(disk.file, { force: true });
    throw operationFailed(`cannot copy the UEFI variable store '${nvram.source}' to '${nvram.file}': ${systemErrorText(err)}`);
  }
  return nvram.file;
}

/** As virt-clone: a display on a fixed port would clash with the original's, so the clone's ports are chosen at start. */
function autoportGraphics(doc: DomainDocument): void {
  editDomain(doc, (root) => {
    for (const g of childElements(firstChild(root, 'devices')!, 'graphics')) {
      if (g.attributes.autoport === 'yes' || g.attributes.port === undefined || g.attributes.port === '-1') continue;
      g.attributes.autoport = 'yes';
      delete g.attributes.port;
      delete g.attributes.websocket;
    }
  });
}

/**
 * virt-clone's generate_clone_disk_path: /img/web.qcow2 of domain "web" becomes /img/new.qcow2
 * for the clone "new"; a file named otherwise gets "-clone" (/img/disk-clone.qcow2); a name taken
 * gets -1, -2… before the extension.
 */
function diskCloneName(source: string, originalName: string, name: string, planned: Set<string>): string {
  const ext = path.extname(source);
  const stem = path.basename(source, ext);
  const base = path.join(path.dirname(source), stem === originalName ? name : `${stem}-clone`);
  for (let n = 0; ; n++) {
    const file = `${base}${n ? `-${n}` : ''}${ext}`;
    if (!planned.has(file) && !fs.existsSync(file)) return file;
  }
}

/** The size of a disk to copy; only a regular file is one (opening a FIFO would block the host). */
function sourceSize(file: string): number {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch (err) {
    throw invalidArg(`cannot clone disk '${file}': ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  if (!stat.isFile()) throw invalidArg(`cannot clone disk '${file}': not a regular file`);
  return stat.size;
}
