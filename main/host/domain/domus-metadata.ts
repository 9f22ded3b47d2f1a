// Edits of a definition that Domus makes itself: title/description (virsh desc) and Domus's own
// settings, kept in <metadata> under Domus's namespace so they travel with the XML.
import type { OnHostStop } from '../../../shared/api.js';
import { DOMAIN_CHILDREN } from '../../../shared/libvirt/schema.js';
import {
  childElements,
  createElement,
  editDomain,
  ensureChild,
  firstChild,
  setText,
  type DomainDocument,
  type XmlElement,
} from './xml.js';

export const DOMUS_NS = 'https://domus.dev/xmlns/domain/1';
const POLICIES: readonly OnHostStop[] = ['shutdown', 'save', 'keep'];

export function setTitleAndDescription(doc: DomainDocument, edit: { title?: string; description?: string }): void {
  editDomain(doc, (root) => {
    for (const key of ['title', 'description'] as const) {
      const text = edit[key];
      if (text === undefined) continue;
      if (text === '') root.children = root.children.filter((c) => !(c.type === 'element' && c.name === key));
      else setText(ensureChild(root, key, DOMAIN_CHILDREN), text);
    }
  });
}

function domusElement(root: XmlElement): XmlElement | undefined {
  const metadata = firstChild(root, 'metadata');
  return metadata && childElements(metadata).find((e) => e.attributes['xmlns:domus'] === DOMUS_NS && e.name === 'domus:settings');
}

/** The guest's policy when the host stops (libvirt-guests' ON_SHUTDOWN, per domain); default shutdown. */
export function onHostStop(doc: DomainDocument): OnHostStop {
  const value = domusElement(doc.root)?.attributes['on-host-stop'];
  return POLICIES.find((p) => p === value) ?? 'shutdown';
}

export function setOnHostStop(doc: DomainDocument, policy: OnHostStop): void {
  setSetting(doc, 'on-host-stop', policy);
}

/**
 * Fast start (fast-start.ts): whether the domain keeps a post-boot state and starts from it, and
 * when that state is taken: when the guest prints the ready line on a serial port (undefined), or
 * `afterSec` seconds after boot for a guest that prints none.
 */
export function fastStart(doc: DomainDocument): { afterSec?: number } | undefined {
  const settings = domusElement(doc.root)?.attributes;
  if (settings?.['fast-start'] !== 'on') return undefined;
  const after = settings['fast-start-after'];
  // A definition edited by hand may hold anything here: only a whole number of seconds counts.
  return after !== undefined && /^[1-9]\d{0,4}$/.test(after) ? { afterSec: Number(after) } : {};
}

export function setFastStart(doc: DomainDocument, setting: { afterSec?: number } | undefined): void {
  setSetting(doc, 'fast-start', setting ? 'on' : undefined);
  setSetting(doc, 'fast-start-after', setting?.afterSec === undefined ? undefined : String(setting.afterSec));
}

function setSetting(doc: DomainDocument, name: string, value: string | undefined): void {
  editDomain(doc, (root) => {
    let settings = domusElement(root);
    if (!settings) {
      if (value === undefined) return;
      settings = createElement('domus:settings', { 'xmlns:domus': DOMUS_NS });
      ensureChild(root, 'metadata', DOMAIN_CHILDREN).children.push(settings);
    }
    if (value === undefined) delete settings.attributes[name];
    else settings.attributes[name] = value;
  });
}
