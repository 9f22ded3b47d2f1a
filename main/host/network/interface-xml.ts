// Edits of a domain's <interface> elements (attach-interface, detach-interface, domif-setlink) and
// the host-side names of a running domain's NICs: libvirt writes <target dev='vnetN'/> into each
// connected interface of the live XML, the smallest N no running domain uses, so the name stays
// the same for as long as the domain runs (and across a host restart: the live XML goes with it).
import type { InterfaceConfig } from '../../../shared/domain.js';
import { editDomain, type DomainDocument } from '../domain/xml.js';
import { childElements, createElement, firstChild, type XmlElement } from '../domain/xml-tree.js';

/** The <devices> children that come before <interface> in libvirt's order. */
const BEFORE_INTERFACE = new Set(['emulator', 'disk', 'controller', 'lease', 'filesystem', 'interface']);

function interfaceElements(root: XmlElement): XmlElement[] {
  const devices = firstChild(root, 'devices');
  return devices ? childElements(devices, 'interface') : [];
}

/** <target dev> of each <interface>, in order (undefined where there is none). */
export function interfaceTargets(doc: DomainDocument): (string | undefined)[] {
  return interfaceElements(doc.root).map((i) => firstChild(i, 'target')?.attributes.dev);
}

/** Whether the engine connects this interface (one on a virtual network). */
export function connected(iface: InterfaceConfig): boolean {
  return iface.type === 'network' && Boolean(iface.source);
}

/** <alias name> of each <interface> (libvirt's net0, net1…: the engine's id of the NIC), in order. */
export function interfaceAliases(doc: DomainDocument): (string | undefined)[] {
  return interfaceElements(doc.root).map((i) => firstChild(i, 'alias')?.attributes.name);
}

/**
 * Names the connected interfaces of a live definition: <target dev='vnetN'/>, N the smallest free
 * in `taken`, and <alias name='netK'/>, K counting the connected interfaces in order (the ids the
 * engines give their NICs at start); the others lose any target and alias.
 */
export function assignTargets(doc: DomainDocument, taken: Set<string>): void {
  editDomain(doc, (root) => {
    let k = 0;
    interfaceElements(root).forEach((el, i) => {
      el.children = el.children.filter((c) => !(c.type === 'element' && (c.name === 'target' || c.name === 'alias')));
      if (connected(doc.config.interfaces[i]!)) nameInterface(el, taken, `net${k++}`);
    });
  });
}

/** Names one interface plugged into a running guest: the next free vnetN and netK. */
export function nameNewInterface(doc: DomainDocument, index: number, taken: Set<string>): { target: string; alias: string } {
  const aliases = new Set(interfaceAliases(doc));
  let k = 0;
  while (aliases.has(`net${k}`)) k++;
  let target = '';
  editDomain(doc, (root) => {
    target = nameInterface(interfaceElements(root)[index]!, taken, `net${k}`);
  });
  return { target, alias: `net${k}` };
}

function nameInterface(el: XmlElement, taken: Set<string>, alias: string): string {
  let n = 0;
  while (taken.has(`vnet${n}`)) n++;
  taken.add(`vnet${n}`);
  // libvirt's order: <mac>, <source>, <target>, <model>, <alias>.
  const after = (name: string) => el.children.findIndex((c) => c.type === 'element' && c.name === name);
  const at = after('source') >= 0 ? after('source') : after('mac');
  el.children.splice(at + 1, 0, createElement('target', { dev: `vnet${n}` }));
  el.children.push(createElement('alias', { name: alias }));
  return `vnet${n}`;
}

/** Adds an interface after the last one (or where libvirt's device order puts it). */
export function addInterface(doc: DomainDocument, spec: { type: 'network' | 'user'; mac: string; source?: string; model?: string }): void {
  const children = [createElement('mac', { address: spec.mac })];
  if (spec.type === 'network') children.push(createElement('source', { network: spec.source! }));
  if (spec.model) children.push(createElement('model', { type: spec.model }));
  editDomain(doc, (root) => {
    let devices = firstChild(root, 'devices');
    if (!devices) {
      devices = createElement('devices');
      root.children.push(devices);
    }
    let after = 0;
    devices.children.forEach((c, i) => {
      if (c.type === 'element' && BEFORE_INTERFACE.has(c.name)) after = i + 1;
    });
    devices.children.splice(after, 0, createElement('interface', { type: spec.type }, children));
  });
}

/** Removes the interface at `index` (an index into config.interfaces). */
export function removeInterface(doc: DomainDocument, index: number): void {
  editDomain(doc, (root) => {
    const el = interfaceElements(root)[index]!;
    const devices = firstChild(root, 'devices')!;
    devices.children = devices.children.filter((c) => c !== el);
  });
}

/** Sets <link state> of the interface at `index`. */
export function setInterfaceLink(doc: DomainDocument, index: number, state: 'up' | 'down'): void {
  editDomain(doc, (root) => {
    const el = interfaceElements(root)[index]!;
    const link = firstChild(el, 'link');
    if (link) link.attributes.state = state;
    else el.children.push(createElement('link', { state }));
  });
}
