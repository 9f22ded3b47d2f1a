import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { generate, generateAll } from './xdrgen.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('the committed protocol files are what the generator makes of the vendored .x files', () => {
  for (const [file, text] of generateAll()) {
    assert.ok(fs.readFileSync(path.join(ROOT, file), 'utf8') === text, `${file} is stale: run node --import tsx build/libvirt/xdrgen.ts`);
  }
});

test('the remote program: every procedure of remote_protocol.x with its types by libvirt naming', async () => {
  const remote = await import('../../main/host/libvirt/protocol/remote.js');
  const procs = remote.remote_procedures as Record<string, { number: number; args: { name: string }; ret: { name: string }; msg?: { name: string }; stream?: string }>;
  assert.equal(Object.keys(procs).length, 443);
  assert.equal(remote.REMOTE_PROGRAM, 0x20008086);
  assert.equal(procs.REMOTE_PROC_CONNECT_OPEN.number, 1);
  assert.equal(procs.REMOTE_PROC_CONNECT_OPEN.args.name, 'remote_connect_open_args');
  assert.equal(procs.REMOTE_PROC_CONNECT_OPEN.ret.name, 'void');
  assert.equal(procs.REMOTE_PROC_DOMAIN_EVENT_CALLBACK_LIFECYCLE.msg?.name, 'remote_domain_event_callback_lifecycle_msg');
  assert.equal(procs.REMOTE_PROC_DOMAIN_OPEN_CONSOLE.stream, 'read');
  assert.equal(procs.REMOTE_PROC_STORAGE_VOL_UPLOAD.stream, 'write');
  // Every _args/_ret/_msg type belongs to a procedure: a naming slip would leave one unused.
  const used = new Set(Object.values(procs).flatMap((p) => [p.args.name, p.ret.name, p.msg?.name]));
  const orphans = Object.keys(remote).filter((k) => /_(args|ret|msg)$/.test(k) && !used.has(k));
  assert.deepEqual(orphans, []);
});

test('rpcgen constructs: union with default and void arms, optional, fixed and variable arrays, enums', async (t) => {
  const src = `
    const MAX = 3;
    enum colour { RED = 1, GREEN = 2 };
    typedef string name<MAX>;
    typedef name *maybe_name;
    struct point { int x; unsigned hyper y; opaque id[2]; char tag[2]; colour c; maybe_name n; point_list *unused_ptr; };
    union shape switch (int kind) { case RED: case GREEN: int size; default: void; };
  `;
  assert.throws(() => generate(src, 't.x', {}), /point_list.*used before it is defined/);
  const good = src.replace(' point_list *unused_ptr;', ' int ids<>;');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xdrgen-'));
  t.after(() => fs.rmSync(dir, { recursive: true }));
  const file = path.join(dir, 'gen.ts');
  fs.writeFileSync(file, generate(good, 't.x', {}).replace("'../xdr.js'", `'${pathToFileURL(path.join(ROOT, 'main/host/libvirt/xdr.ts')).href}'`));
  const gen = await import(pathToFileURL(file).href);
  const xdr = await import('../../main/host/libvirt/xdr.js');
  const p = { x: -1, y: 2n ** 64n - 1n, id: Buffer.from([7, 8]), tag: [65, -1], c: 2, n: 'ab', ids: [1, 2] };
  assert.deepEqual(xdr.decode(gen.point, xdr.encode(gen.point, p)), p);
  assert.deepEqual(xdr.decode<{ n: unknown }>(gen.point, xdr.encode(gen.point, { ...p, n: null })).n, null);
  assert.throws(() => xdr.encode(gen.point, { ...p, n: 'abcd' }), /point\.n: string of 4 bytes exceeds the maximum 3/);
  assert.throws(() => xdr.encode(gen.point, { ...p, c: 3 }), /point\.c: 3 is not a value of enum colour/);
  assert.deepEqual(xdr.decode(gen.shape, xdr.encode(gen.shape, { kind: 1, size: 5 })), { kind: 1, size: 5 });
  assert.equal(xdr.encode(gen.shape, { kind: 2, size: 5 }).length, 8);
  assert.deepEqual(xdr.decode(gen.shape, xdr.encode(gen.shape, { kind: 7 })), { kind: 7 });
  assert.deepEqual(xdr.decode(gen.shape, Buffer.from([0, 0, 0, 1, 0, 0, 0, 9])), { kind: 1, size: 9 });
  assert.throws(() => generate('struct s { string x; };', 't.x', {}), /x: string needs \[size\] or <max>/);
  assert.throws(() => generate('typedef int t[UNKNOWN];', 't.x', {}), /unknown constant 'UNKNOWN'/);
  assert.throws(() => generate('program P { };', 't.x', {}), /unsupported definition 'program'/);
});
