// The element orders against XML libvirt wrote itself (the host's fixtures: virsh dumpxml and
// virt-install output): every listed child appears in the listed order.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { XMLParser } from 'fast-xml-parser';
import { DISK_CHILDREN, DOMAIN_CHILDREN, INTERFACE_CHILDREN, OS_CHILDREN } from './schema.js';

const FIXTURES = ['virt-install-debian12', 'dumpxml-running', 'xen-pv-pygrub', 'v86-direct-kernel'];

interface Element {
  name: string;
  children: Element[];
}

/** The element tree of a fixture: names and child elements only. */
function fixture(name: string): Element {
  const xml = readFileSync(new URL(`../../main/host/domain/fixtures/${name}.xml`, import.meta.url), 'utf8');
  const convert = (nodes: Record<string, unknown>[]): Element[] =>
    nodes.flatMap((node) => {
      const key = Object.keys(node).find((k) => k !== ':@' && !k.startsWith('#'));
      return key === undefined ? [] : [{ name: key, children: convert(node[key] as Record<string, unknown>[]) }];
    });
  const [root] = convert(new XMLParser({ preserveOrder: true, commentPropName: '#comment' }).parse(xml) as Record<string, unknown>[]);
  assert.equal(root.name, 'domain');
  return root;
}

/** The names of `parent`'s children that `order` lists, in document order. */
function listed(parent: Element, order: readonly string[]): string[] {
  return parent.children.map((c) => c.name).filter((n) => order.includes(n));
}

function assertInOrder(parent: Element, order: readonly string[], where: string): void {
  const names = listed(parent, order);
  const sorted = [...names].sort((a, b) => order.indexOf(a) - order.indexOf(b));
  assert.deepEqual(names, sorted, where);
}

const child = (parent: Element, name: string): Element[] => parent.children.filter((c) => c.name === name);

for (const name of FIXTURES) {
  test(`${name}: children of <domain>, <os>, <disk> and <interface> are in libvirt's order`, () => {
    const root = fixture(name);
    assertInOrder(root, DOMAIN_CHILDREN, '<domain>');
    for (const os of child(root, 'os')) assertInOrder(os, OS_CHILDREN, '<os>');
    for (const devices of child(root, 'devices')) {
      for (const disk of child(devices, 'disk')) assertInOrder(disk, DISK_CHILDREN, '<disk>');
      for (const nic of child(devices, 'interface')) assertInOrder(nic, INTERFACE_CHILDREN, '<interface>');
    }
  });
}

test('the fixtures exercise most of each order', () => {
  const seen = (pick: (root: Element) => Element[], order: readonly string[]): Set<string> =>
    new Set(FIXTURES.flatMap((f) => pick(fixture(f)).flatMap((e) => listed(e, order))));
  const devices = (root: Element): Element[] => child(root, 'devices');
  assert.ok(seen((r) => [r], DOMAIN_CHILDREN).size >= 15);
  assert.deepEqual([...seen((r) => child(r, 'os'), OS_CHILDREN)].sort(), ['boot', 'cmdline', 'initrd', 'kernel', 'type']);
  assert.deepEqual([...seen((r) => devices(r).flatMap((d) => child(d, 'disk')), DISK_CHILDREN)].sort(), ['address', 'backingStore', 'driver', 'readonly', 'source', 'target']);
  assert.deepEqual([...seen((r) => devices(r).flatMap((d) => child(d, 'interface')), INTERFACE_CHILDREN)].sort(), ['address', 'mac', 'model', 'source']);
});
