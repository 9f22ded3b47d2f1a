// The install-time definition of a domain created from install media (virt-install's two
// definitions). The persistent definition is the final one (the disk boots, the CD-ROM is empty)
// plus <domus:install media=…/> while the install is pending; each start before the install is
// over boots a live definition derived here: the media in the CD-ROM, the CD-ROM first. When the
// guest first reboots or powers itself off, the install is over: the note goes, and the host
// restarts a rebooting guest on the final definition.
import { DISK_CHILDREN } from '../../../shared/libvirt/schema.js';
import {
  childElements,
  createElement,
  editDomain,
  ensureChild,
  firstChild,
  parseDomainXml,
  serializeDomainXml,
  type DomainDocument,
  type XmlElement,
} from './xml.js';
import { DOMUS_NS } from './domus-metadata.js';

function installElement(root: XmlElement): XmlElement | undefined {
  const metadata = firstChild(root, 'metadata');
  return metadata && childElements(metadata).find((e) => e.name === 'domus:install' && e.attributes['xmlns:domus'] === DOMUS_NS);
}

/** The install media while the install is pending; undefined once it is over (or never was). */
export function pendingInstall(doc: DomainDocument): { media: string } | undefined {
  const media = installElement(doc.root)?.attributes.media;
  return media ? { media } : undefined;
}

/** The live definition of an install boot: the media in the first CD-ROM, which boots first. */
export function installTimeDocument(doc: DomainDocument): DomainDocument {
  const pending = pendingInstall(doc);
  if (!pending) throw new Error(`domain '${doc.config.name}' has no pending install`);
  const live = parseDomainXml(serializeDomainXml(doc));
  editDomain(live, (root) => {
    const os = firstChild(root, 'os')!;
    os.children = os.children.filter((c) => !(c.type === 'element' && c.name === 'boot'));
    os.children.push(createElement('boot', { dev: 'cdrom' }), createElement('boot', { dev: 'hd' }));
    const devices = firstChild(root, 'devices');
    let cdrom = devices && childElements(devices, 'disk').find((d) => d.attributes.device === 'cdrom');
    if (!cdrom) {
      cdrom = createElement('disk', { type: 'file', device: 'cdrom' }, [
        createElement('target', { dev: 'hdc', bus: 'ide' }),
        createElement('readonly'),
      ]);
      devices!.children.push(cdrom);
    }
    cdrom.children = cdrom.children.filter((c) => !(c.type === 'element' && c.name === 'source'));
    ensureChild(cdrom, 'source', DISK_CHILDREN).attributes.file = pending.media;
  });
  return live;
}

/** The final definition: the same without the pending-install note. */
export function completeInstall(doc: DomainDocument): DomainDocument {
  const done = parseDomainXml(serializeDomainXml(doc));
  editDomain(done, (root) => {
    const metadata = firstChild(root, 'metadata');
    if (!metadata) return;
    metadata.children = metadata.children.filter((c) => !(c.type === 'element' && c.name === 'domus:install'));
    if (childElements(metadata).length === 0) root.children = root.children.filter((c) => c !== metadata);
  });
  return done;
}
