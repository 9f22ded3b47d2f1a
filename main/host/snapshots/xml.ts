// libvirt's <domainsnapshot> XML (docs: formatsnapshot.html; schema domainsnapshot.rng): what the
// host stores per snapshot and what snapshot-dumpxml prints, with the <domain> as it was then.
import { childElements, createElement, firstChild, parseXmlTree, serializeXmlTree, textContent, XmlSyntaxError, type XmlElement, type XmlNode } from '../domain/xml-tree.js';
import { invalidArg, xmlError } from '../errors.js';
import type { SnapshotInfo } from '../../../shared/api.js';

export type SnapshotLocation = 'internal' | 'external' | 'no';

export interface SnapshotDisk {
  /** The disk's target dev (vda, hda…). */
  name: string;
  snapshot: SnapshotLocation;
}

/** One snapshot's metadata, as stored. */
export interface SnapshotMeta {
  name: string;
  description?: string;
  state: SnapshotInfo['state'];
  parent?: string;
  /** Epoch seconds. */
  createdAt: number;
  memory: SnapshotLocation;
  disks: SnapshotDisk[];
  /** The definition at that moment (the live one for a running guest). */
  domainXml: string;
}

const STATES: readonly SnapshotInfo['state'][] = ['running', 'paused', 'shutoff', 'disk-snapshot'];
const LOCATIONS: readonly SnapshotLocation[] = ['internal', 'external', 'no'];

function text(name: string, value: string): XmlElement {
  return createElement(name, {}, [{ type: 'text', text: value }]);
}

export function snapshotXml(meta: SnapshotMeta): string {
  const children: XmlNode[] = [text('name', meta.name)];
  if (meta.description) children.push(text('description', meta.description));
  children.push(text('state', meta.state));
  if (meta.parent) children.push(createElement('parent', {}, [text('name', meta.parent)]));
  children.push(text('creationTime', String(meta.createdAt)));
  children.push(createElement('memory', { snapshot: meta.memory }));
  children.push(createElement('disks', {}, meta.disks.map((d) => createElement('disk', { name: d.name, snapshot: d.snapshot }))));
  const domain = parseXmlTree(meta.domainXml).find((n): n is XmlElement => n.type === 'element');
  if (domain) children.push(domain);
  return serializeXmlTree([createElement('domainsnapshot', {}, children)]);
}

function root(xml: string): XmlElement {
  let nodes: XmlNode[];
  try {
    nodes = parseXmlTree(xml);
  } catch (err) {
    if (err instanceof XmlSyntaxError) throw xmlError(`invalid snapshot XML: ${err.message}`);
    throw err;
  }
  const el = nodes.find((n): n is XmlElement => n.type === 'element');
  if (el?.name !== 'domainsnapshot') throw xmlError(`invalid snapshot XML: root element is <${el?.name}>, expected <domainsnapshot>`);
  return el;
}

function childText(el: XmlElement, name: string): string | undefined {
  const c = firstChild(el, name);
  return c ? textContent(c).trim() : undefined;
}

/** What a user's <domainsnapshot> (snapshot-create XMLFILE) asks for: the rest is the host's to decide. */
export function parseSnapshotRequest(xml: string): { name?: string; description?: string; diskOnly: boolean } {
  const el = root(xml);
  const memory = firstChild(el, 'memory')?.attributes.snapshot;
  if (memory !== undefined && !LOCATIONS.includes(memory as SnapshotLocation)) throw invalidArg(`memory snapshot='${memory}' is not one of ${LOCATIONS.join(', ')}`);
  if (firstChild(el, 'domain')) throw invalidArg('a new snapshot takes the domain as it is: <domain> is only accepted when redefining, which this host does not do');
  return { name: childText(el, 'name') || undefined, description: childText(el, 'description'), diskOnly: memory === 'no' || childText(el, 'state') === 'disk-snapshot' };
}

/** Reads a stored snapshot's metadata; `file` names it in errors. */
export function parseSnapshotXml(xml: string, file: string): SnapshotMeta {
  const el = root(xml);
  const name = childText(el, 'name');
  const state = childText(el, 'state') as SnapshotInfo['state'];
  const createdAt = Number(childText(el, 'creationTime'));
  const memory = (firstChild(el, 'memory')?.attributes.snapshot ?? 'no') as SnapshotLocation;
  const domain = firstChild(el, 'domain');
  if (!name || !STATES.includes(state) || !Number.isSafeInteger(createdAt) || !LOCATIONS.includes(memory) || !domain) {
    throw xmlError(`snapshot metadata '${file}' lacks its name, state, creationTime, memory or domain`);
  }
  const parentEl = firstChild(el, 'parent');
  const disksEl = firstChild(el, 'disks');
  return {
    name,
    description: childText(el, 'description'),
    state,
    parent: parentEl ? childText(parentEl, 'name') : undefined,
    createdAt,
    memory,
    disks: disksEl ? childElements(disksEl, 'disk').map((d) => ({ name: d.attributes.name ?? '', snapshot: (d.attributes.snapshot ?? 'no') as SnapshotLocation })) : [],
    domainXml: serializeXmlTree([domain]),
  };
}
