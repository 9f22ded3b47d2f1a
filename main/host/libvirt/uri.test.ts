import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sshCommand, tlsCredentialPaths, unixSocketPath } from './transports.js';
import { parseUri, proxyParam } from './uri.js';

test('libvirt URIs: transports, defaults, and the name sent with CONNECT_OPEN', () => {
  const local = parseUri('qemu:///system');
  assert.deepEqual([local.driver, local.transport, local.host, local.path, local.name], ['qemu', 'unix', undefined, '/system', 'qemu:///system']);
  const ssh = parseUri('qemu+ssh://alice@example.test:2222/system?keyfile=/k&foo=bar%20baz');
  assert.deepEqual([ssh.transport, ssh.user, ssh.host, ssh.port, ssh.params.get('foo')], ['ssh', 'alice', 'example.test', 2222, 'bar baz']);
  // client-side parameters are consumed; the rest go to the server with the driver URI
  assert.equal(ssh.name, 'qemu:///system?foo=bar%20baz');
  assert.equal(parseUri('qemu+tcp://127.0.0.1:16600/system').name, 'qemu:///system');
  assert.equal(parseUri('qemu://host.test/system').transport, 'tls', 'a host without a transport means TLS, as in libvirt');
  assert.equal(parseUri('qemu+tls://[::1]/system').host, '::1');
  assert.equal(parseUri('qemu+ssh://h/system?name=qemu:///session').name, 'qemu:///session');
  assert.equal(parseUri('qemu+unix:///system?socket=/tmp/x%2Fy').params.get('socket'), '/tmp/x/y');
});

test('bad URIs are refused with the reason', () => {
  const bad: [string, RegExp][] = [
    ['qemu', /'qemu' is not a libvirt URI: expected driver\[\+transport\]:\/\//],
    ['qemu+carrier://h/system', /unknown transport 'carrier' \(expected unix, tcp, tls or ssh\)/],
    ['qemu+libssh2://h/system', /libssh2 transport is not supported; use qemu\+ssh:\/\//],
    ['qemu+unix://host/system', /a unix socket cannot reach the remote host 'host'/],
    ['qemu+tcp:///system', /the tcp transport needs a host/],
    ['qemu+tcp://h:99999/system', /port '99999' is not a number from 1 to 65535/],
    ['qemu+tcp://h:x/system', /port 'x' is not a number/],
    ['qemu+ssh://h/system?proxy=telepathy', /proxy='telepathy' must be auto, netcat or native/],
    ['qemu+ssh://h/system?mode=weird', /mode='weird' must be auto, direct or legacy/],
    ['qemu:///system?socket=%zz', /the value of socket has a malformed %-escape/],
  ];
  for (const [uri, why] of bad) assert.throws(() => sshCommand(parseUri(uri)), why, uri);
});

test('the ssh command libvirt would run: BatchMode, virt-ssh-helper with nc -U fallback, netcat when a socket is named', () => {
  const auto = sshCommand(parseUri('qemu+ssh://bob@h:2200/system?keyfile=/id&no_verify=1'), { sshArgs: ['-F', '/dev/null'] });
  assert.equal(auto.command, 'ssh');
  assert.deepEqual(auto.args.slice(0, -1), ['-p', '2200', '-l', 'bob', '-i', '/id', '-T', '-e', 'none', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=no', '-F', '/dev/null', '--', 'h']);
  const script = auto.args.at(-1)!;
  assert.match(script, /^sh -c '/);
  assert.match(script, /virt-ssh-helper qemu:\/\/\/system/);
  assert.match(script, /-U \/var\/run\/libvirt\/libvirt-sock/);
  const nc = sshCommand(parseUri("qemu+ssh://h/system?socket=/tmp/it's/sock"), { sshAskpass: '/bin/askpass' });
  assert.ok(!nc.args.includes('BatchMode=yes'), 'an askpass program replaces BatchMode');
  assert.doesNotMatch(nc.args.at(-1)!, /virt-ssh-helper/);
  assert.equal(proxyParam(parseUri('qemu+ssh://h/session')), 'native');
  assert.match(sshCommand(parseUri('qemu+ssh://h/system?mode=direct&proxy=netcat')).args.at(-1)!, /virtqemud-sock/);
  assert.throws(() => sshCommand(parseUri('qemu+ssh://h/session?proxy=netcat')), /needs \?socket=/);
});

test('local sockets and TLS credentials follow libvirt defaults', () => {
  assert.equal(unixSocketPath(parseUri('qemu+unix:///system?socket=/run/x.sock')), '/run/x.sock');
  assert.equal(unixSocketPath(parseUri('qemu:///system?mode=legacy')), '/var/run/libvirt/libvirt-sock');
  assert.equal(unixSocketPath(parseUri('qemu:///system?mode=direct')), '/var/run/libvirt/virtqemud-sock');
  assert.deepEqual(tlsCredentialPaths(parseUri('qemu+tls://h/system?pkipath=/p')), { ca: '/p/cacert.pem', cert: '/p/clientcert.pem', key: '/p/clientkey.pem' });
  if (process.getuid?.() === 0) {
    assert.deepEqual(tlsCredentialPaths(parseUri('qemu+tls://h/system')), { ca: '/etc/pki/CA/cacert.pem', cert: '/etc/pki/libvirt/clientcert.pem', key: '/etc/pki/libvirt/private/clientkey.pem' });
  }
});

test("a URI's host and user cannot be ssh options or shell words", () => {
  for (const uri of ['qemu+ssh://-oProxyCommand=touch%20x/system', 'qemu+ssh://%2DoProxyCommand=x/system', 'qemu+ssh://a%20b/system', 'qemu+ssh://h%0Ax/system', 'qemu+ssh://$(id)/system', "qemu+tcp://h'/system"]) {
    assert.throws(() => parseUri(uri), /is not a host name or IP address/, uri);
  }
  for (const uri of ['qemu+ssh://-oProxyCommand=x@h/system', 'qemu+ssh://a%20b@h/system', 'qemu+ssh://%24(id)@h/system', 'qemu+ssh://a%0Ab@h/system', 'qemu+ssh://a;b@h/system']) {
    assert.throws(() => parseUri(uri), /has a character no user name has/, uri);
  }
  assert.deepEqual([parseUri('qemu+ssh://root.admin-1@my_host.example-1.test/system').host, parseUri('qemu+tls://[fe80::1%25eth0]/system').host], ['my_host.example-1.test', 'fe80::1%eth0']);
});
