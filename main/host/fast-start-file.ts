// Where a domain's fast-start state is kept (fast-start.ts): its name carries a fingerprint of the
// definition (metadata, title and description aside: they do not change the guest) and of the size,
// mtime and inode of each file it boots from, so that a state only pairs with them as they were.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { serializeDomainXml, type DomainDocument } from './domain/xml.js';

export function stateFile(dir: string, doc: DomainDocument): string {
  const root = structuredClone(doc.root);
  root.children = root.children.filter((c) => !(c.type === 'element' && ['metadata', 'title', 'description'].includes(c.name)));
  const hash = createHash('sha256').update(serializeDomainXml({ ...doc, root, nodes: doc.nodes.map((n) => (n === doc.root ? root : n)) }));
  const { os } = doc.config;
  for (const f of [...doc.config.disks.map((d) => d.source), os.kernel, os.initrd, os.loader?.path]) {
    if (!f) continue;
    const st = fs.statSync(f, { throwIfNoEntry: false });
    hash.update(`\n${f}\0${st ? `${st.size}:${st.mtimeMs}:${st.ino}` : 'missing'}`);
  }
  return path.join(dir, `${doc.config.uuid}.fast-${hash.digest('hex').slice(0, 16)}.state`);
}

/** Every fast-start state kept for a domain, whichever definition it pairs with. */
export function statesOf(dir: string, uuid: string): string[] {
  const prefix = `${uuid}.fast-`;
  return fs.readdirSync(dir).filter((f) => f.startsWith(prefix) && f.endsWith('.state')).map((f) => path.join(dir, f));
}
