import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { APP_ORIGIN, checkPortRequest, isAppUrl, navigationAllowed, windowOpenDecision } from './policy.js';

const UUID = '0b6f7c52-3a0e-4d55-9f1e-8a3c2b1d4e5f';
const OURS = { frameUrl: `${APP_ORIGIN}/index.html#/domains`, mainFrame: true, ourWindow: true };

describe('Electron window policy', () => {
  it('keeps navigation on the app', () => {
    for (const url of [`${APP_ORIGIN}/index.html`, `${APP_ORIGIN}/index.html#/console/${UUID}`, 'DOMUS://APP/index.html']) {
      assert.equal(navigationAllowed(url), true, url);
    }
    for (const url of [
      'https://example.com/',
      'http://127.0.0.1:8080/index.html',
      'file:///etc/passwd',
      'about:blank',
      'javascript:alert(1)',
      'data:text/html,<script>1</script>',
      'domus://evil/index.html',
      'domus://user:pw@app/index.html',
      'domus://app.evil.com/index.html',
      'not a url',
      '',
    ]) {
      assert.equal(navigationAllowed(url), false, url);
      assert.equal(isAppUrl(url), false, url);
    }
  });

  it('opens only the console window; every other URL, the web included, is denied', () => {
    assert.equal(windowOpenDecision(`${APP_ORIGIN}/index.html#/console/${UUID}/window`), 'console-window');
    // A libvirt domain's console: its key is the connection's URI, a space and the UUID.
    const libvirtKey = encodeURIComponent(`qemu+ssh://root@host/system ${UUID}`);
    assert.equal(windowOpenDecision(`${APP_ORIGIN}/index.html#/console/${libvirtKey}/window`), 'console-window');
    for (const url of [
      `${APP_ORIGIN}/index.html#/console/${encodeURIComponent(`not a uri ${UUID}`)}/window`,
      `${APP_ORIGIN}/index.html#/console/${encodeURIComponent('qemu:///system ../../etc')}/window`,
      `${APP_ORIGIN}/index.html#/console/%E0%A4%A/window`,
      'https://example.com/',
      'http://example.com/',
      `${APP_ORIGIN}/index.html#/console/../../etc/window`,
      `${APP_ORIGIN}/index.html#/console/${UUID}`,
      `${APP_ORIGIN}/index.html?x=1#/console/${UUID}/window`,
      `${APP_ORIGIN}/other.html#/console/${UUID}/window`,
      `domus://evil/index.html#/console/${UUID}/window`,
      `https://app/index.html#/console/${UUID}/window`,
      'about:blank',
    ]) {
      assert.equal(windowOpenDecision(url), 'deny', url);
    }
  });

  it('hands a port only to a well-formed request from the top frame of one of our windows', () => {
    assert.deepEqual(checkPortRequest(OURS, { kind: 'api', requestId: 'p1' }), { ok: true, request: { kind: 'api', requestId: 'p1' } });
    assert.deepEqual(checkPortRequest(OURS, { kind: 'api', domain: undefined, requestId: 'p2' }), { ok: true, request: { kind: 'api', requestId: 'p2' } });
    assert.deepEqual(checkPortRequest(OURS, { kind: 'vnc', domain: UUID, requestId: 'p3' }), { ok: true, request: { kind: 'vnc', domain: UUID, requestId: 'p3' } });
    assert.deepEqual(checkPortRequest(OURS, { kind: 'vnc', domain: UUID, connection: 'qemu:///system', requestId: 'p4' }), {
      ok: true,
      request: { kind: 'vnc', domain: UUID, connection: 'qemu:///system', requestId: 'p4' },
    });
    assert.deepEqual(checkPortRequest(OURS, { kind: 'vnc', domain: UUID, connection: 'no uri', requestId: 'p5' }), { ok: false, reason: 'the connection is not a libvirt URI' });

    const refused: [Parameters<typeof checkPortRequest>[0], unknown, RegExp][] = [
      [{ ...OURS, ourWindow: false }, { kind: 'api', requestId: 'p1' }, /not a window of this app/],
      [{ ...OURS, mainFrame: false }, { kind: 'api', requestId: 'p1' }, /subframe/],
      [{ ...OURS, frameUrl: 'https://example.com/' }, { kind: 'api', requestId: 'p1' }, /page https:\/\/example.com\/ is not the app's/],
      [{ ...OURS, frameUrl: undefined }, { kind: 'api', requestId: 'p1' }, /\(unknown\) is not the app's/],
      [OURS, null, /not an object/],
      [OURS, ['api'], /not an object/],
      [OURS, { kind: 'shell', requestId: 'p1' }, /unknown channel kind "shell"/],
      [OURS, { kind: 'vnc', requestId: 'p1' }, /needs a domain uuid/],
      [OURS, { kind: 'vnc', domain: '../../../home/user/.ssh', requestId: 'p1' }, /needs a domain uuid/],
      [OURS, { kind: 'api', domain: UUID, requestId: 'p1' }, /takes no domain/],
      [OURS, { kind: 'api', requestId: 'x'.repeat(65) }, /requestId/],
      [OURS, { kind: 'api', requestId: 7 }, /requestId/],
      [OURS, { kind: 'api', requestId: 'p1', extra: true }, /unknown fields: extra/],
    ];
    for (const [sender, req, reason] of refused) {
      const verdict = checkPortRequest(sender, req);
      assert.equal(verdict.ok, false, JSON.stringify(req));
      if (!verdict.ok) assert.match(verdict.reason, reason);
    }
  });
});
