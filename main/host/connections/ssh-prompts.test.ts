// The askpass program (dist/host/askpass.mjs, as ssh runs it) against the host's prompt socket:
// an answer is what ssh reads, an unanswered prompt times out, a token not handed out asks nothing,
// and the socket is the owner's alone.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import type { Events } from '../../../shared/api.js';
import { SshPrompts } from './ssh-prompts.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'domus-askpass-'));
const prompts = new SshPrompts(dir, 500);
after(async () => {
  await prompts.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs the askpass program as ssh does: the prompt as its one argument, the answer on stdout. */
const askpass = (program: string, env: Record<string, string>, text: string): Promise<{ code: number; stdout: string }> =>
  new Promise((resolve) => {
    execFile(program, [text], { env: { ...process.env, ...env } }, (err, stdout) => resolve({ code: err ? Number(err.code) : 0, stdout }));
  });
const next = <E extends 'prompt' | 'ended'>(event: E): Promise<E extends 'prompt' ? Events['connection.prompt'] : Events['connection.promptEnded']> =>
  new Promise((resolve) => prompts.once(event as 'prompt', resolve as never));

test('an answer goes to ssh; the socket is owner-only', async () => {
  const session = await prompts.session('qemu+ssh://h/system');
  assert.equal(fs.statSync(path.join(dir, 'askpass.sock')).mode & 0o777, 0o600);
  const asked = next('prompt');
  const run = askpass(session.program, session.env, "root@h's password: ");
  const prompt = await asked;
  assert.deepEqual({ ...prompt, id: 'x' }, { uri: 'qemu+ssh://h/system', id: 'x', text: "root@h's password:", secret: true });
  prompts.answer(prompt.id, 'sesame');
  assert.deepEqual(await run, { code: 0, stdout: 'sesame\n' });
  assert.equal(session.unanswered(), undefined);
  session.end();
});

test('a host key question is not secret; one nobody answers times out and fails ssh', async () => {
  const session = await prompts.session('qemu+ssh://h/system');
  const asked = next('prompt');
  const ended = next('ended');
  const run = askpass(session.program, session.env, 'Are you sure you want to continue connecting (yes/no/[fingerprint])? ');
  assert.equal((await asked).secret, false);
  assert.equal((await ended).outcome, 'timed out');
  assert.equal((await run).code, 1);
  assert.deepEqual(session.unanswered(), { text: 'Are you sure you want to continue connecting (yes/no/[fingerprint])?', outcome: 'timed out' });
  const { id } = await asked;
  assert.throws(() => prompts.answer(id, 'yes'), /no ssh prompt .* is waiting/);
  session.end();
});

test('a token the host did not hand out, or one whose attempt is over, asks nothing', async () => {
  const session = await prompts.session('qemu+ssh://h/system');
  session.end();
  let asked = false;
  prompts.once('prompt', () => (asked = true));
  assert.equal((await askpass(session.program, session.env, 'Password: ')).code, 1);
  assert.equal((await askpass(session.program, { ...session.env, DOMUS_ASKPASS_TOKEN: 'guess' }, 'Password: ')).code, 1);
  assert.equal(asked, false);
});
