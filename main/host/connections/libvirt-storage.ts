// Storage pools and volumes of a libvirt host (REMOTE_PROC_STORAGE_*), answered in the same shapes
// as this computer's own storage (PoolInfo, VolumeInfo), and vol-upload of a file on the Domus host
// into a new volume over REMOTE_PROC_STORAGE_VOL_UPLOAD, as a job with progress and cancel.
import fs from 'node:fs';
import { once } from 'node:events';
import { XMLParser } from 'fast-xml-parser';
import type { JobInfo, PoolInfo, VolumeInfo } from '../../../shared/api.js';
import { HostError, invalidArg, noStoragePool, operationFailed, operationInvalid } from '../errors.js';
import { parseDomainXml } from '../domain/xml.js';
import type { remote_nonnull_storage_pool, remote_nonnull_storage_vol } from '../libvirt/protocol/remote.js';
import type { RpcStream } from '../libvirt/rpc-client.js';
import { parseUri } from '../libvirt/uri.js';
import type { LibvirtConnection, LibvirtMethods, NonnullDomain } from './libvirt.js';

type Pool = remote_nonnull_storage_pool;
type Vol = remote_nonnull_storage_vol;

export const DEFAULT_POOL = 'default';
/** Where virt-manager puts a system connection's default pool (virtinst's _preferred_default_pool_path). */
export const DEFAULT_POOL_PATH = '/var/lib/libvirt/images';

/** virStoragePoolState: only 'running' (2) is usable. */
const POOL_RUNNING = 2;
/** virStorageVolResizeFlags: shrinking must be asked for. */
const RESIZE_SHRINK = 4;
/** virDomainXMLFlags. */
const XML_INACTIVE = 2;
/** How often an upload reports its progress. */
const PROGRESS_EVERY_MS = 200;
const UPLOAD_CHUNK = 1 << 20;

const parser = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', parseTagValue: false });

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** What a pool's or volume's XML says that the RPC info does not: its type, target path and format. */
function readXml(xml: string, root: 'pool' | 'volume'): { type?: string; path?: string; format?: string } {
  const doc = parser.parse(xml)[root] ?? {};
  const target = doc.target ?? {};
  return { type: doc['@type'], path: target.path !== undefined ? String(target.path) : undefined, format: target.format?.['@type'] };
}

function volumeFormat(format: string | undefined): VolumeInfo['format'] {
  return format === 'raw' || format === 'qcow2' || format === 'iso' ? format : 'unknown';
}

interface Upload {
  job: JobInfo;
  aborted: boolean;
  done: Promise<JobInfo>;
}

export class LibvirtStorage {
  private readonly uploads = new Map<number, Upload>();
  private nextJob = 1;

  constructor(private readonly conn: LibvirtConnection) {}

  async listPools(): Promise<PoolInfo[]> {
    const { pools } = await this.conn.rpcCall('REMOTE_PROC_CONNECT_LIST_ALL_STORAGE_POOLS', { need_results: 1, flags: 0 });
    const infos = await Promise.all((pools as Pool[]).map((p) => this.poolInfo(p)));
    // As this computer lists them: the default pool first, then by name.
    return infos.sort((a, b) => Number(b.name === DEFAULT_POOL) - Number(a.name === DEFAULT_POOL) || a.name.localeCompare(b.name));
  }

  /**
   * A pool by name. A missing 'default' pool is made as virt-manager makes it on first use (a dir
   * pool at /var/lib/libvirt/images, built, started, autostarted); `warnings` then says so.
   */
  async pool(name: string, warnings?: string[]): Promise<Pool> {
    try {
      return (await this.conn.rpcCall('REMOTE_PROC_STORAGE_POOL_LOOKUP_BY_NAME', { name })).pool;
    } catch (err) {
      if (!(err instanceof HostError && err.code === 'NO_STORAGE_POOL') || name !== DEFAULT_POOL || !warnings) throw err;
    }
    return this.createDefaultPool(warnings);
  }

  private async createDefaultPool(warnings: string[]): Promise<Pool> {
    if (parseUri(this.conn.uri).path !== '/system') {
      throw noStoragePool(`${this.conn.uri} has no storage pool 'default'; define one there (virsh pool-define-as default dir --target DIR; virsh pool-start default)`);
    }
    const xml = `<pool type="dir"><name>${DEFAULT_POOL}</name><target><path>${DEFAULT_POOL_PATH}</path></target></pool>`;
    const { pool } = await this.conn.rpcCall('REMOTE_PROC_STORAGE_POOL_DEFINE_XML', { xml, flags: 0 });
    try {
      await this.conn.rpcCall('REMOTE_PROC_STORAGE_POOL_BUILD', { pool, flags: 0 });
      await this.conn.rpcCall('REMOTE_PROC_STORAGE_POOL_CREATE', { pool, flags: 0 });
      await this.conn.rpcCall('REMOTE_PROC_STORAGE_POOL_SET_AUTOSTART', { pool, autostart: 1 });
    } catch (err) {
      await this.conn.rpcCall('REMOTE_PROC_STORAGE_POOL_UNDEFINE', { pool }).catch(() => undefined);
      throw new HostError(err instanceof HostError ? err.code : 'OPERATION_FAILED', `could not create the default storage pool at ${DEFAULT_POOL_PATH}: ${(err as Error).message}`);
    }
    warnings.push(`${this.conn.uri} had no storage pool; created the 'default' pool at ${DEFAULT_POOL_PATH} (started, autostart), as virt-manager does`);
    return pool;
  }

  async listVolumes(poolName: string, warnings?: string[]): Promise<VolumeInfo[]> {
    const pool = await this.pool(poolName, warnings);
    // Files put in the directory by other means appear, as virt-manager refreshes before it lists.
    await this.conn.rpcCall('REMOTE_PROC_STORAGE_POOL_REFRESH', { pool, flags: 0 }).catch(() => undefined);
    const { vols } = await this.conn.rpcCall('REMOTE_PROC_STORAGE_POOL_LIST_ALL_VOLUMES', { pool, need_results: 1, flags: 0 });
    const users = await this.users();
    const infos = await Promise.all((vols as Vol[]).map((v) => this.describe(v, users)));
    return infos.sort((a, b) => a.name.localeCompare(b.name));
  }

  async createVolume(poolName: string, name: string, capacityBytes: number, format: 'raw' | 'qcow2', warnings?: string[]): Promise<VolumeInfo> {
    const pool = await this.pool(poolName, warnings);
    // Sparse, as virt-manager creates a new disk: space is used as the guest writes.
    const xml = volumeXml(name, capacityBytes, format);
    const { vol } = await this.conn.rpcCall('REMOTE_PROC_STORAGE_VOL_CREATE_XML', { pool, xml, flags: 0 });
    return this.describe(vol);
  }

  async cloneVolume(poolName: string, source: string, name: string): Promise<VolumeInfo> {
    const from = await this.volume(source, poolName);
    const pool = (await this.conn.rpcCall('REMOTE_PROC_STORAGE_POOL_LOOKUP_BY_VOLUME', { vol: from })).pool;
    const fromPath = await this.path(from);
    const writer = (await this.users()).find((u) => u.running && u.writes.has(fromPath));
    if (writer) throw operationInvalid(`volume '${from.name}' is in use by running domain '${writer.name}'; shut it down first`);
    const [{ capacity }, fromXml] = await Promise.all([
      this.conn.rpcCall('REMOTE_PROC_STORAGE_VOL_GET_INFO', { vol: from }),
      this.conn.rpcCall('REMOTE_PROC_STORAGE_VOL_GET_XML_DESC', { vol: from, flags: 0 }),
    ]);
    const format = readXml(fromXml.xml, 'volume').format ?? 'raw';
    const xml = volumeXml(name, Number(capacity), format);
    const { vol } = await this.conn.rpcCall('REMOTE_PROC_STORAGE_VOL_CREATE_XML_FROM', { pool, xml, clonevol: from, flags: 0 });
    return this.describe(vol);
  }

  async resizeVolume(poolName: string, name: string, capacityBytes: number): Promise<VolumeInfo> {
    const vol = await this.volume(name, poolName);
    const { capacity } = await this.conn.rpcCall('REMOTE_PROC_STORAGE_VOL_GET_INFO', { vol });
    // As this computer's resize: the size asked is the size made, smaller too (libvirt wants the shrink flag for that).
    const flags = BigInt(capacityBytes) < capacity ? RESIZE_SHRINK : 0;
    await this.conn.rpcCall('REMOTE_PROC_STORAGE_VOL_RESIZE', { vol, capacity: BigInt(capacityBytes), flags });
    return this.describe(vol);
  }

  async deleteVolume(poolName: string, name: string): Promise<void> {
    const vol = await this.volume(name, poolName);
    const file = await this.path(vol);
    // libvirt would delete it from under the guest; this computer's storage refuses, and so does this.
    const user = (await this.users()).find((u) => u.running && u.paths.has(file));
    if (user) throw operationInvalid(`volume '${vol.name}' is in use by running domain '${user.name}'`);
    await this.conn.rpcCall('REMOTE_PROC_STORAGE_VOL_DELETE', { vol, flags: 0 });
  }

  async volumeInfo(volume: string, poolName?: string): Promise<VolumeInfo> {
    return this.describe(await this.volume(volume, poolName));
  }

  /** A volume the way virsh finds one: a path, else a name in the pool (or in any pool). */
  async volume(ref: string, poolName?: string): Promise<Vol> {
    if (ref.includes('/')) {
      const { vol } = await this.conn.rpcCall('REMOTE_PROC_STORAGE_VOL_LOOKUP_BY_PATH', { path: ref });
      if (poolName && vol.pool !== poolName) throw new HostError('NO_STORAGE_VOL', `no storage vol with matching path '${ref}' in pool '${poolName}'`);
      return vol;
    }
    const pools = poolName ? [await this.pool(poolName)] : ((await this.conn.rpcCall('REMOTE_PROC_CONNECT_LIST_ALL_STORAGE_POOLS', { need_results: 1, flags: POOL_LIST_ACTIVE })).pools as Pool[]);
    for (const pool of pools) {
      try {
        return (await this.conn.rpcCall('REMOTE_PROC_STORAGE_VOL_LOOKUP_BY_NAME', { pool, name: ref })).vol;
      } catch (err) {
        if (!(err instanceof HostError && err.code === 'NO_STORAGE_VOL')) throw err;
      }
    }
    throw new HostError('NO_STORAGE_VOL', `no storage vol with matching name '${ref}'${poolName ? ` in pool '${poolName}'` : ` on ${this.conn.uri}`}`);
  }

  async path(vol: Vol): Promise<string> {
    return (await this.conn.rpcCall('REMOTE_PROC_STORAGE_VOL_GET_PATH', { vol })).name;
  }

  /**
   * virsh vol-upload into a new volume: the volume is made sized to the file, the file streamed into
   * it; job.progress events follow the bytes sent. A failed or cancelled upload leaves no volume.
   */
  async upload(poolName: string, name: string, file: string, warnings: string[]): Promise<{ volume: VolumeInfo; job: JobInfo }> {
    let size: number;
    try {
      const st = fs.statSync(file);
      if (!st.isFile()) throw invalidArg(`'${file}' is not a regular file`);
      size = st.size;
    } catch (err) {
      if (err instanceof HostError) throw err;
      const e = err as NodeJS.ErrnoException;
      throw invalidArg(e.code === 'ENOENT' ? `file '${file}' does not exist on the Domus host` : `cannot read '${file}': ${e.message}`);
    }
    const input = await fs.promises.open(file, 'r').catch((err: Error) => {
      throw invalidArg(`cannot read '${file}': ${err.message}`);
    });
    try {
      const pool = await this.pool(poolName, warnings);
      // The bytes are the image: a raw container of the file's size, whatever the file holds (the pool reads its format afterwards).
      const { vol } = await this.conn.rpcCall('REMOTE_PROC_STORAGE_VOL_CREATE_XML', { pool, xml: volumeXml(name, size, 'raw'), flags: 0 });
      const job: JobInfo = {
        id: this.nextJob++,
        uuid: vol.key,
        domain: name,
        volume: { pool: vol.pool, name },
        operation: 'upload',
        status: 'running',
        startedAt: Date.now(),
        elapsedMs: 0,
        processedBytes: 0,
        totalBytes: size,
      };
      let settle!: (job: JobInfo) => void;
      const upload: Upload = { job, aborted: false, done: new Promise((resolve) => (settle = resolve)) };
      this.uploads.set(job.id, upload);
      this.conn.emitEvent('job.progress', { job: { ...job } });
      let error: Error | undefined;
      try {
        await this.send(vol, input, upload);
      } catch (err) {
        error = err as Error;
      }
      this.uploads.delete(job.id);
      job.elapsedMs = Date.now() - job.startedAt;
      if (error || upload.aborted) {
        await this.conn.rpcCall('REMOTE_PROC_STORAGE_VOL_DELETE', { vol, flags: 0 }).catch(() => undefined);
        job.status = upload.aborted ? 'aborted' : 'failed';
        if (error) job.error = error.message;
      } else job.status = 'completed';
      this.conn.emitEvent('job.completed', { job: { ...job } });
      settle({ ...job });
      if (upload.aborted) throw new HostError('OPERATION_ABORTED', `upload of '${file}' to volume '${name}' was cancelled; the volume was deleted`);
      if (error) throw error instanceof HostError ? error : operationFailed(`upload of '${file}' to volume '${name}' failed: ${error.message}`);
      // The pool reads the uploaded image's format; libvirt also refreshes it itself, a moment later.
      await this.conn.rpcCall('REMOTE_PROC_STORAGE_POOL_REFRESH', { pool, flags: 0 }).catch(() => undefined);
      return { volume: await this.describe(vol), job: { ...job } };
    } finally {
      await input.close();
    }
  }

  private async send(vol: Vol, input: fs.promises.FileHandle, upload: Upload): Promise<void> {
    const { job } = upload;
    const stream: RpcStream = await this.conn.client().openStream('REMOTE_PROC_STORAGE_VOL_UPLOAD', { vol, offset: 0n, length: BigInt(job.totalBytes), flags: 0 });
    const failed = new Promise<never>((_, reject) => stream.once('error', reject));
    failed.catch(() => undefined);
    let reported = 0;
    const buf = Buffer.alloc(UPLOAD_CHUNK);
    while (job.processedBytes < job.totalBytes && !upload.aborted) {
      const { bytesRead } = await input.read(buf, 0, buf.length, job.processedBytes);
      if (bytesRead === 0) throw operationFailed(`the file ended after ${job.processedBytes} of ${job.totalBytes} bytes (it changed while it was sent)`);
      if (!stream.write(Buffer.from(buf.subarray(0, bytesRead)))) await Promise.race([once(stream, 'drain'), failed]);
      job.processedBytes += bytesRead;
      if (Date.now() - reported >= PROGRESS_EVERY_MS) {
        reported = Date.now();
        job.elapsedMs = reported - job.startedAt;
        this.conn.emitEvent('job.progress', { job: { ...job } });
      }
    }
    if (upload.aborted) {
      await stream.abort();
      return;
    }
    await Promise.race([stream.finish(), failed]);
  }

  /** Cancels an upload; answers its job once the stream is aborted and the volume deleted. */
  async abortUpload(id: number): Promise<JobInfo> {
    const upload = this.uploads.get(id);
    if (!upload) throw operationInvalid(`no upload job ${id} is running on ${this.conn.uri}`);
    upload.aborted = true;
    return upload.done;
  }

  /** A volume as this computer describes one: pool, name, path, format, sizes, the domains using it. */
  async describe(vol: Vol, users?: DiskUser[]): Promise<VolumeInfo> {
    const [info, xml, all] = await Promise.all([
      this.conn.rpcCall('REMOTE_PROC_STORAGE_VOL_GET_INFO', { vol }),
      this.conn.rpcCall('REMOTE_PROC_STORAGE_VOL_GET_XML_DESC', { vol, flags: 0 }),
      users ?? this.users(),
    ]);
    const { path, format } = readXml(xml.xml, 'volume');
    const file = path ?? vol.key;
    return {
      pool: vol.pool,
      name: vol.name,
      path: file,
      format: volumeFormat(format),
      capacityBytes: Number(info.capacity),
      allocationBytes: Number(info.allocation),
      usedBy: all.filter((u) => u.paths.has(file)).map((u) => u.name),
    };
  }

  private async poolInfo(pool: Pool): Promise<PoolInfo> {
    const [info, autostart, xml] = await Promise.all([
      this.conn.rpcCall('REMOTE_PROC_STORAGE_POOL_GET_INFO', { pool }),
      this.conn.rpcCall('REMOTE_PROC_STORAGE_POOL_GET_AUTOSTART', { pool }),
      this.conn.rpcCall('REMOTE_PROC_STORAGE_POOL_GET_XML_DESC', { pool, flags: 0 }),
    ]);
    const { type, path } = readXml(xml.xml, 'pool');
    return {
      name: pool.name,
      type: type ?? 'unknown',
      path: path ?? '',
      state: info.state === POOL_RUNNING ? 'running' : 'inactive',
      autostart: Boolean(autostart.autostart),
      capacityBytes: Number(info.capacity),
      allocationBytes: Number(info.allocation),
      availableBytes: Number(info.available),
    };
  }

  /** Every domain's files (disks, kernel, initrd): the live definition of a running one, else the persistent one. */
  private async users(): Promise<DiskUser[]> {
    const { domains } = await this.conn.rpcCall('REMOTE_PROC_CONNECT_LIST_ALL_DOMAINS', { need_results: 1, flags: 0 });
    const users = await Promise.all(
      (domains as NonnullDomain[]).map(async (dom): Promise<DiskUser | undefined> => {
        try {
          const running = dom.id >= 0;
          const { xml } = await this.conn.rpcCall('REMOTE_PROC_DOMAIN_GET_XML_DESC', { dom, flags: running ? 0 : XML_INACTIVE });
          const { config } = parseDomainXml(xml);
          const paths = new Set<string>();
          const writes = new Set<string>();
          for (const d of config.disks) {
            if (!d.source) continue;
            paths.add(d.source);
            if (!d.readonly && d.device !== 'cdrom') writes.add(d.source);
          }
          for (const f of [config.os.kernel, config.os.initrd]) if (f) paths.add(f);
          return { name: dom.name, running, paths, writes };
        } catch {
          // A domain that went away meanwhile, or a definition this host cannot read, uses nothing.
          return undefined;
        }
      }),
    );
    return users.filter((u): u is DiskUser => u !== undefined);
  }
}

interface DiskUser {
  name: string;
  running: boolean;
  paths: Set<string>;
  writes: Set<string>;
}

/** virConnectListAllStoragePoolsFlags ACTIVE: a name is looked for in the pools that can hold it now. */
const POOL_LIST_ACTIVE = 2;

function volumeXml(name: string, capacityBytes: number, format: string): string {
  return `<volume><name>${esc(name)}</name><capacity unit="bytes">${capacityBytes}</capacity><allocation unit="bytes">0</allocation><target><format type="${esc(format)}"/></target></volume>`;
}

/** The storage methods of a libvirt connection. */
export function storageMethods(conn: LibvirtConnection, storage = new LibvirtStorage(conn)): LibvirtMethods {
  type P = Record<string, unknown>;
  const withWarnings = async <T extends object>(run: (warnings: string[]) => Promise<T>): Promise<T & { warnings?: string[] }> => {
    const warnings: string[] = [];
    const result = await run(warnings);
    return warnings.length ? { ...result, warnings } : result;
  };
  return {
    'pool.list': async () => ({ pools: await storage.listPools() }),
    'volume.list': (p: P) => withWarnings(async (w) => ({ volumes: await storage.listVolumes(p.pool as string, w) })),
    'volume.create': (p: P) => withWarnings(async (w) => ({ volume: await storage.createVolume(p.pool as string, p.name as string, p.capacityBytes as number, p.format as 'raw' | 'qcow2', w) })),
    'volume.clone': async (p: P) => ({ volume: await storage.cloneVolume(p.pool as string, p.source as string, p.name as string) }),
    'volume.resize': async (p: P) => ({ volume: await storage.resizeVolume(p.pool as string, p.name as string, p.capacityBytes as number) }),
    'volume.delete': async (p: P) => {
      await storage.deleteVolume(p.pool as string, p.name as string);
      return {};
    },
    'volume.info': async (p: P) => ({ volume: await storage.volumeInfo(p.volume as string, p.pool as string | undefined) }),
    'volume.upload': (p: P) => withWarnings((w) => storage.upload(p.pool as string, p.name as string, p.file as string, w)),
    'volume.uploadAbort': async (p: P) => ({ job: await storage.abortUpload(p.job as number) }),
  };
}
