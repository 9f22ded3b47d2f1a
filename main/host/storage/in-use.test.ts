import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { DiskConfig } from '../../../shared/domain.js';
import { diskConflict, type DiskUser } from './in-use.js';

const disk = (source: string, device: DiskConfig['device'] = 'disk', readonly = false): DiskConfig => ({ device, source, format: 'raw', target: device === 'cdrom' ? 'hdc' : 'hda', bus: 'ide', readonly });
const user = (name: string, running: boolean, disks: DiskConfig[]): DiskUser => ({ name, uuid: `uuid-${name}`, running, disks });

test('a writable disk is one running domain’s; CD-ROM media are shared; stopped domains and the domain itself do not count', () => {
  const users = [user('a', true, [disk('/img/a.img'), disk('/iso/x.iso', 'cdrom', true)]), user('b', false, [disk('/img/b.img')])];
  assert.match(diskConflict('uuid-c', [disk('/img/a.img')], users) ?? '', /disk '\/img\/a\.img' \(hda\) is in use by running domain 'a', which writes to it/);
  assert.match(diskConflict('uuid-c', [disk('/img/../img/a.img', 'disk', true)], users) ?? '', /running domain 'a'/, 'same file by another spelling; <readonly/> does not make a v86 disk shareable');
  assert.match(diskConflict('uuid-c', [disk('/iso/x.iso')], users) ?? '', /running domain 'a', which uses it/, 'a CD another guest reads cannot become a writable disk');
  assert.equal(diskConflict('uuid-c', [disk('/iso/x.iso', 'cdrom', true)], users), undefined);
  assert.equal(diskConflict('uuid-c', [disk('/img/b.img')], users), undefined);
  assert.equal(diskConflict('uuid-a', [disk('/img/a.img')], users), undefined);
});
