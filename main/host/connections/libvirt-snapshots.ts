// Snapshots on a libvirt connection, through libvirt's own procedures: LIST_ALL_SNAPSHOTS and
// SNAPSHOT_GET_XML_DESC (the tree is read from each <domainsnapshot>'s <parent>), SNAPSHOT_CURRENT,
// SNAPSHOT_CREATE_XML, REVERT_TO_SNAPSHOT, SNAPSHOT_DELETE. libvirt keeps no thumbnails.
import type { JobInfo, Result, SnapshotInfo } from '../../../shared/api.js';
import { createElement, serializeXmlTree, type XmlNode } from '../domain/xml-tree.js';
import type { remote_nonnull_domain_snapshot } from '../libvirt/protocol/remote.js';
import { descendants, snapshotInfo } from '../snapshots/tree.js';
import { parseSnapshotXml, type SnapshotMeta } from '../snapshots/xml.js';
import { uuidText, type LibvirtConnection, type LibvirtMethods, type NonnullDomain } from './libvirt.js';

/** virDomainSnapshotCreateFlags / RevertFlags / DeleteFlags. */
const CREATE_DISK_ONLY = 16;
const REVERT_RUNNING = 1;
const REVERT_PAUSED = 2;
const DELETE_CHILDREN = 1;

class LibvirtSnapshots {
  private nextJob = 1;
  constructor(private readonly conn: LibvirtConnection) {}

  private async all(dom: NonnullDomain): Promise<{ metas: SnapshotMeta[]; current?: string }> {
    const { snapshots } = await this.conn.rpcCall('REMOTE_PROC_DOMAIN_LIST_ALL_SNAPSHOTS', { dom, need_results: 1, flags: 0 });
    const metas: SnapshotMeta[] = [];
    for (const snap of snapshots) {
      const { xml } = await this.conn.rpcCall('REMOTE_PROC_DOMAIN_SNAPSHOT_GET_XML_DESC', { snap, flags: 0 });
      metas.push(parseSnapshotXml(xml, `snapshot '${snap.name}' of ${this.conn.uri}`));
    }
    const has = (await this.conn.rpcCall('REMOTE_PROC_DOMAIN_HAS_CURRENT_SNAPSHOT', { dom, flags: 0 })).result;
    const current = has ? (await this.conn.rpcCall('REMOTE_PROC_DOMAIN_SNAPSHOT_CURRENT', { dom, flags: 0 })).snap.name : undefined;
    return { metas: metas.sort((a, b) => a.createdAt - b.createdAt), current };
  }

  async list(ref: string): Promise<Result<'snapshot.list'>> {
    const { metas, current } = await this.all(await this.conn.lookup(ref));
    return { snapshots: metas.map((m) => snapshotInfo(m, metas, current, false)) };
  }

  async one(ref: string, name?: string): Promise<SnapshotInfo> {
    const dom = await this.conn.lookup(ref);
    const wanted = name ?? (await this.conn.rpcCall('REMOTE_PROC_DOMAIN_SNAPSHOT_CURRENT', { dom, flags: 0 })).snap.name;
    const snap = await this.snap(dom, wanted);
    const { metas, current } = await this.all(dom);
    const meta = metas.find((m) => m.name === snap.name) ?? parseSnapshotXml((await this.conn.rpcCall('REMOTE_PROC_DOMAIN_SNAPSHOT_GET_XML_DESC', { snap, flags: 0 })).xml, snap.name);
    return snapshotInfo(meta, metas, current, false);
  }

  private async snap(dom: NonnullDomain, name: string): Promise<remote_nonnull_domain_snapshot> {
    return (await this.conn.rpcCall('REMOTE_PROC_DOMAIN_SNAPSHOT_LOOKUP_BY_NAME', { dom, name, flags: 0 })).snap;
  }

  private job(dom: NonnullDomain, operation: 'snapshot' | 'snapshot-revert', startedAt: number): JobInfo {
    return { id: this.nextJob++, uuid: uuidText(dom.uuid), domain: dom.name, operation, status: 'completed', startedAt, elapsedMs: Date.now() - startedAt, processedBytes: 0, totalBytes: 0 };
  }

  async create(ref: string, p: { name?: string; description?: string; diskOnly?: boolean; xml?: string }): Promise<Result<'snapshot.create'>> {
    const dom = await this.conn.lookup(ref);
    const startedAt = Date.now();
    const children: XmlNode[] = [];
    if (p.name) children.push(createElement('name', {}, [{ type: 'text', text: p.name }]));
    if (p.description) children.push(createElement('description', {}, [{ type: 'text', text: p.description }]));
    const xml_desc = p.xml ?? serializeXmlTree([createElement('domainsnapshot', {}, children)]);
    const { snap } = await this.conn.rpcCall('REMOTE_PROC_DOMAIN_SNAPSHOT_CREATE_XML', { dom, xml_desc, flags: p.diskOnly ? CREATE_DISK_ONLY : 0 });
    return { snapshot: await this.one(ref, snap.name), job: this.job(dom, 'snapshot', startedAt) };
  }

  async revert(ref: string, name: string, running: boolean, paused: boolean): Promise<Result<'snapshot.revert'>> {
    const dom = await this.conn.lookup(ref);
    const startedAt = Date.now();
    const snap = await this.snap(dom, name);
    await this.conn.rpcCall('REMOTE_PROC_DOMAIN_REVERT_TO_SNAPSHOT', { snap, flags: (running ? REVERT_RUNNING : 0) | (paused ? REVERT_PAUSED : 0) });
    return { domain: await this.conn.summary(dom), snapshot: await this.one(ref, name), job: this.job(dom, 'snapshot-revert', startedAt) };
  }

  async delete(ref: string, name: string, children: boolean): Promise<Result<'snapshot.delete'>> {
    const dom = await this.conn.lookup(ref);
    const snap = await this.snap(dom, name);
    const gone = children ? [name, ...descendants((await this.all(dom)).metas, name)] : [name];
    await this.conn.rpcCall('REMOTE_PROC_DOMAIN_SNAPSHOT_DELETE', { snap, flags: children ? DELETE_CHILDREN : 0 });
    return { deleted: gone };
  }

  async xml(ref: string, name: string): Promise<string> {
    const snap = await this.snap(await this.conn.lookup(ref), name);
    return (await this.conn.rpcCall('REMOTE_PROC_DOMAIN_SNAPSHOT_GET_XML_DESC', { snap, flags: 0 })).xml;
  }
}

export function snapshotMethods(conn: LibvirtConnection): LibvirtMethods {
  const s = new LibvirtSnapshots(conn);
  return {
    'snapshot.list': (p) => s.list(p.domain!),
    'snapshot.info': async (p) => ({ snapshot: await s.one(p.domain!, p.snapshot as string | undefined) }),
    'snapshot.create': (p) =>
      s.create(p.domain!, { name: p.name as string | undefined, description: p.description as string | undefined, diskOnly: p.diskOnly === true, xml: p.xml as string | undefined }),
    'snapshot.revert': (p) => s.revert(p.domain!, p.snapshot as string, p.running === true, p.paused === true),
    'snapshot.delete': (p) => s.delete(p.domain!, p.snapshot as string, p.children === true),
    'snapshot.xml': async (p) => ({ xml: await s.xml(p.domain!, p.snapshot as string) }),
    'snapshot.thumbnail': async () => ({}),
  };
}
