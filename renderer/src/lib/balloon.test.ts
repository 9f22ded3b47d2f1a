// The Memory page's balloon words and scopes: a target not reached yet reads as pending (not as a
// guest without a driver), a live change stays out of the next boot unless asked, and a lowered
// target below the OS's floor is warned about.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { balloonState, belowFloor, memoryFloor, setMemoryScope, UNKNOWN_OS_FLOOR_MIB } from './balloon';

const mib = (kib: number): string => `${kib / 1024} MiB`;

describe('balloon state', () => {
  test('a target the guest has not reached is pending, with what it holds now', () => {
    const s = balloonState({ balloon: 'pending', targetKiB: 256 * 1024, actualKiB: 384 * 1024 }, mib);
    assert.equal(s.kind, 'pending');
    assert.equal(s.label, 'Pending');
    assert.match(s.meaning, /not reached the target yet: it holds 384 MiB/);
    assert.doesNotMatch(s.meaning, /runs no balloon driver/);
  });

  test('after the bounded wait: no driver answered (yet), and the target stays set', () => {
    const s = balloonState({ balloon: 'no-driver', targetKiB: 256 * 1024, actualKiB: 384 * 1024 }, mib);
    assert.equal(s.kind, 'no-driver');
    assert.match(s.meaning, /has not loaded virtio_balloon \(yet\), so it keeps 384 MiB for now/);
    assert.match(s.meaning, /if the driver loads later, the guest follows it then/);
  });

  test('applied and absent', () => {
    assert.equal(balloonState({ balloon: 'ok', targetKiB: 256 * 1024, actualKiB: 256 * 1024 }, mib).meaning, 'The guest holds the target, 256 MiB.');
    assert.equal(balloonState({ balloon: 'absent', targetKiB: 1, actualKiB: 1 }, mib).kind, 'absent');
  });
});

describe('setmem scope of the Memory page', () => {
  test('a running guest: live only, the next boot only when asked (and only if it has one)', () => {
    assert.deepEqual(setMemoryScope(true, true, false), { live: true, config: false });
    assert.deepEqual(setMemoryScope(true, true, true), { live: true, config: true });
    assert.deepEqual(setMemoryScope(true, false, true), { live: true, config: false }, 'a transient domain has no next boot');
  });

  test('shut off: the next boot', () => {
    assert.deepEqual(setMemoryScope(false, true, false), { live: false, config: true });
  });
});

describe('memory floor', () => {
  const catalogue = [{ id: 'debian12-netinst', name: 'Debian', version: '12', memoryMiB: 512 }];

  test("the OS the definition records gives its figure; otherwise a general floor, said so", () => {
    assert.deepEqual(memoryFloor('domus:debian12-netinst', catalogue), { mib: 512, source: 'what Debian 12 needs (its libosinfo metadata)' });
    const unknown = memoryFloor(undefined, catalogue);
    assert.equal(unknown.mib, UNKNOWN_OS_FLOOR_MIB);
    assert.match(unknown.source, /no libosinfo metadata/);
    assert.equal(memoryFloor('http://debian.org/debian/12', catalogue).mib, UNKNOWN_OS_FLOOR_MIB);
    // An osinfo-db id (as virt-install and the wizard's detection write it): that OS's minimum, once looked up.
    const testing = { id: 'http://debian.org/debian/testing', name: 'Debian testing', minimumMemoryMiB: 1024 };
    assert.deepEqual(memoryFloor(testing.id, catalogue, testing), { mib: 1024, source: 'the minimum of Debian testing (osinfo-db, from its libosinfo metadata)' });
    assert.equal(memoryFloor('http://debian.org/debian/11', catalogue, testing).mib, UNKNOWN_OS_FLOOR_MIB, 'an entry for another OS is not used');
  });

  test('warns only when lowering below the floor', () => {
    const floor = { mib: 256, source: '' };
    assert.equal(belowFloor(200 * 1024, 384 * 1024, floor), true);
    assert.equal(belowFloor(300 * 1024, 384 * 1024, floor), false);
    assert.equal(belowFloor(128 * 1024, 128 * 1024, floor), false, 'unchanged is no new risk');
    assert.equal(belowFloor(200 * 1024, 100 * 1024, floor), false, 'raising is no risk');
  });
});
