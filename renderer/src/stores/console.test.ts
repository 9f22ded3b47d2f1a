import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { base64ToBytes, bytesToBase64 } from '../lib/base64';
import { domainKey } from '../lib/connections';
import { SEND_KEY_COMBOS } from '../lib/consoleKeys';
import { MAX_TYPED_TEXT } from '../lib/typeText';
import { fakeHostPerTest, settle, summary } from '../testing/fakeHost';
import { useConsoleStore } from './console';
import { useToastStore } from './toasts';

const GUEST = summary({ uuid: 'g1', name: 'guest', state: 'running', reason: 'booted', id: 1 });
const CTRL_ALT_DEL = SEND_KEY_COMBOS[0];

describe('console store', () => {
  const fixture = fakeHostPerTest([GUEST]);

  it('marks a screenshot in flight, and answers the PNG bytes', async () => {
    const consoleStore = useConsoleStore();
    const shot = consoleStore.screenshot('g1');
    await settle();
    assert.equal(consoleStore.shooting.g1, true);
    assert.equal(await consoleStore.screenshot('g1'), null, 'a second shot waits for the first');
    fixture.host.reply('domain.screenshot', { png: bytesToBase64(new Uint8Array([0x89, 0x50])), width: 640, height: 480 });
    assert.deepEqual([...((await shot) ?? [])], [0x89, 0x50]);
    assert.equal(consoleStore.shooting.g1, undefined);
    assert.equal(fixture.host.sent('domain.screenshot').length, 1);
  });

  it('turns a failed screenshot or key into a toast naming the guest', async () => {
    const consoleStore = useConsoleStore();
    fixture.host.answer('domain.screenshot', () => {
      throw { code: 'OPERATION_INVALID', message: 'domain is not running' };
    });
    fixture.host.answer('domain.sendKey', () => {
      throw { code: 'OPERATION_FAILED', message: 'the runner is gone' };
    });
    assert.equal(await consoleStore.screenshot('g1'), null);
    assert.equal(consoleStore.shooting.g1, undefined);
    await consoleStore.sendKey('g1', CTRL_ALT_DEL);
    assert.deepEqual(fixture.host.sent('domain.sendKey'), [{ domain: 'g1', codeset: 'linux', keycodes: CTRL_ALT_DEL.keys }]);
    assert.deepEqual(
      useToastStore().toasts.map((t) => [t.title, t.message]),
      [
        ['Could not take a screenshot of “guest”', 'domain is not running'],
        ['Could not send Ctrl+Alt+Delete to “guest”', 'the runner is gone'],
      ],
    );
  });

  it('types text in order, in pieces the contract takes, with line ends as Enter', async () => {
    const consoleStore = useConsoleStore();
    fixture.host.answer('domain.sendKeys', () => ({}));
    const text = `${'a'.repeat(4096)}b\r\nc`;
    await consoleStore.typeText('g1', text);
    assert.deepEqual(
      fixture.host.sent('domain.sendKeys').map((p) => p.text),
      ['a'.repeat(4096), 'b\nc'],
    );
    assert.deepEqual(useToastStore().toasts, []);
  });

  it('refuses to type more than it allows, without sending any of it', async () => {
    const consoleStore = useConsoleStore();
    await consoleStore.typeText('g1', 'x'.repeat(MAX_TYPED_TEXT + 1));
    assert.deepEqual(fixture.host.sent('domain.sendKeys'), []);
    assert.match(useToastStore().toasts[0].message, /at most 65536 are typed at a time/);
  });

  it('hands serial output to the readers of that guest only, until they stop', async () => {
    const consoleStore = useConsoleStore();
    const seen: string[] = [];
    const decoder = new TextDecoder();
    const stop = consoleStore.onSerialOutput('g1', (bytes) => seen.push(decoder.decode(bytes)));
    fixture.host.emit('domain.serial', { uuid: 'g1', data: btoa('login: ') });
    fixture.host.emit('domain.serial', { uuid: 'other', data: btoa('not mine') });
    await settle();
    stop();
    fixture.host.emit('domain.serial', { uuid: 'g1', data: btoa('after') });
    await settle();
    assert.deepEqual(seen, ['login: ']);
  });

  it('opens the serial line with its backlog, and writes in pieces under the size limit', async () => {
    const consoleStore = useConsoleStore();
    fixture.host.answer('domain.serialOpen', () => ({ backlog: btoa('earlier output') }));
    fixture.host.answer('domain.serialWrite', () => ({}));
    assert.equal(new TextDecoder().decode(await consoleStore.serialOpen('g1')), 'earlier output');
    const text = 'y'.repeat(48 * 1024 + 10);
    await consoleStore.serialWrite('g1', text);
    const pieces = fixture.host.sent('domain.serialWrite').map((p) => base64ToBytes(p.data).length);
    assert.deepEqual(pieces, [48 * 1024, 10]);
  });

  it('reports a refused serial write to the caller', async () => {
    const consoleStore = useConsoleStore();
    fixture.host.answer('domain.serialWrite', () => {
      throw { code: 'OPERATION_INVALID', message: 'serial console not open' };
    });
    await assert.rejects(consoleStore.serialWrite('g1', 'ls\n'), /serial console not open/);
  });
  it('sends a libvirt domain\'s console calls to its connection, and hands it that connection\'s serial output only', async () => {
    const consoleStore = useConsoleStore();
    const uri = 'qemu+ssh://root@server/system';
    const key = domainKey(uri, 'g1');
    fixture.host.answer('domain.serialOpen', () => ({ backlog: btoa('remote boot') }));
    fixture.host.answer('domain.sendKey', () => ({}));
    assert.equal(new TextDecoder().decode(await consoleStore.serialOpen(key)), 'remote boot');
    await consoleStore.sendKey(key, CTRL_ALT_DEL);
    assert.deepEqual(fixture.host.sent('domain.serialOpen'), [{ domain: 'g1' }]);
    assert.deepEqual([fixture.host.sentTo('domain.serialOpen'), fixture.host.sentTo('domain.sendKey')], [[uri], [uri]]);
    const seen: string[] = [];
    const stop = consoleStore.onSerialOutput(key, (bytes) => seen.push(new TextDecoder().decode(bytes)));
    fixture.host.emit('domain.serial', { uuid: 'g1', data: btoa('local guest, same uuid') });
    fixture.host.emit('domain.serial', { uuid: 'g1', data: btoa('remote line') }, uri);
    fixture.host.emit('domain.serial', { uuid: 'g1', data: btoa('another host') }, 'qemu+tcp://other/system');
    await settle();
    stop();
    assert.deepEqual(seen, ['remote line']);
  });
});
