import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildUri, connectionLabel, customUriProblem, domainKey, parseDomainKey, parseUri, uriFormProblems, type UriForm } from './connections';

const form = (fields: Partial<UriForm>): UriForm => ({ hypervisor: 'qemu', transport: 'local', username: '', hostname: '', ...fields });

describe('connection URIs', () => {
  it('are generated as virt-manager generates them', () => {
    assert.equal(buildUri(form({})), 'qemu:///system');
    assert.equal(buildUri(form({ hostname: 'ignored', username: 'ignored' })), 'qemu:///system');
    assert.equal(buildUri(form({ transport: 'ssh', username: 'root', hostname: 'server:2222' })), 'qemu+ssh://root@server:2222/system');
    assert.equal(buildUri(form({ transport: 'ssh', hostname: ' server ' })), 'qemu+ssh://server/system');
    assert.equal(buildUri(form({ transport: 'tcp', username: 'root', hostname: '127.0.0.1:1' })), 'qemu+tcp://127.0.0.1:1/system');
    assert.equal(buildUri(form({ transport: 'tls', hostname: 'host.example' })), 'qemu+tls://host.example/system');
    assert.equal(buildUri(form({ transport: 'ssh', hostname: '[::1]:22' })), 'qemu+ssh://[::1]:22/system');
  });

  it('say what is wrong with a field', () => {
    assert.deepEqual(uriFormProblems(form({})), {});
    assert.match(uriFormProblems(form({ transport: 'ssh' })).hostname ?? '', /Enter the host name/);
    for (const bad of ['host name', 'host:0', 'host:65536', 'host:port', '-host', 'a..b', '[zz]:22', 'user@host']) {
      assert.match(uriFormProblems(form({ transport: 'tcp', hostname: bad })).hostname ?? '', /Expected a host name/, bad);
    }
    for (const good of ['server', 'server.example.org', '192.0.2.7:16509', '[fe80::1]', 'host-1:22']) {
      assert.deepEqual(uriFormProblems(form({ transport: 'tcp', hostname: good })), {}, good);
    }
    assert.match(uriFormProblems(form({ transport: 'ssh', hostname: 'h', username: 'a b' })).username ?? '', /letters, digits/);
    assert.deepEqual(uriFormProblems(form({ transport: 'tls', hostname: 'h', username: 'a b' })), {}, 'the user name is SSH’s only');
  });

  it('typed by hand are checked as the host checks them', () => {
    assert.equal(customUriProblem('qemu+ssh://root@server/system?keyfile=/k'), '');
    assert.match(customUriProblem(''), /Enter a libvirt URI/);
    assert.match(customUriProblem('server'), /expected a libvirt URI/);
    assert.match(customUriProblem('qemu:///system now'), /expected a libvirt URI/);
  });

  it('are named as virt-manager names them', () => {
    assert.deepEqual(parseUri('qemu+ssh://root@server:2222/system?keyfile=/k'), { driver: 'qemu', transport: 'ssh', user: 'root', host: 'server', port: 2222, path: '/system' });
    assert.equal(connectionLabel('qemu:///system'), 'QEMU/KVM');
    assert.equal(connectionLabel('qemu:///session'), 'QEMU/KVM user session');
    assert.equal(connectionLabel('qemu+ssh://root@server:2222/system'), 'QEMU/KVM: root@server:2222');
    assert.equal(connectionLabel('qemu+tcp://127.0.0.1:1/system'), 'QEMU/KVM: 127.0.0.1:1');
    assert.equal(connectionLabel('xen+ssh://h/'), 'Xen: h');
    assert.equal(connectionLabel('not a uri'), 'not a uri');
  });
});

describe('domain keys', () => {
  it('are the UUID here, and the URI and UUID on a libvirt connection', () => {
    const uuid = '5e4c1a52-8c0f-4a41-9d5e-2b1b1f0c9a77';
    assert.equal(domainKey(undefined, uuid), uuid);
    assert.deepEqual(parseDomainKey(uuid), { uuid });
    const key = domainKey('qemu+ssh://root@server/system?keyfile=/k', uuid);
    assert.deepEqual(parseDomainKey(key), { connection: 'qemu+ssh://root@server/system?keyfile=/k', uuid });
  });
});
