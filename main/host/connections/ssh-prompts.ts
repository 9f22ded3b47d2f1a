// ssh's questions (a key's passphrase, a password, an unknown host key) asked through Domus's
// clients. ssh runs with SSH_ASKPASS set to askpass.mjs (main/host/libvirt/askpass.ts), which brings
// each prompt here over a unix socket in the host's run directory (owner-only, as the directory is);
// a one-time token per connection attempt, in ssh's environment only, says which attempt asks. Each
// prompt goes to every client as a `connection.prompt` event; the first `connection.answer` for its
// id wins. Any client of the host may answer: the API socket and the web shell admit only this user
// (and the web shell's session holders), who own the ssh keys in question anyway. An unanswered
// prompt is cancelled after PROMPT_TIMEOUT_MS; a cancelled prompt fails the attempt.
import { randomBytes, randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Events } from '../../../shared/api.js';
import { writeFileAtomic } from '../../common/fsutil.js';
import { APP_ROOT } from '../../common/paths.js';
import { shellQuote } from '../../common/shell.js';
import { HostError, invalidArg } from '../errors.js';
import { RpcClient } from '../libvirt/rpc-client.js';
import { parseUri } from '../libvirt/uri.js';
import { log } from '../log.js';
import type { RpcOpener } from './libvirt.js';

export const PROMPT_TIMEOUT_MS = 120_000;
/** A helper that says more than this before its newline is not ours. */
const MAX_REQUEST = 16 * 1024;

type Prompt = Events['connection.prompt'];
type Ending = Events['connection.promptEnded']['outcome'];

interface Pending {
  prompt: Prompt;
  attempt: Attempt;
  reply: (answer: string | undefined) => void;
  timer: NodeJS.Timeout;
}

interface Attempt {
  uri: string;
  /** How the last of its prompts ended, when nobody answered it. */
  unanswered?: { text: string; outcome: Exclude<Ending, 'answered'> };
}

/** One connection attempt's view: ssh's askpass program and environment, and why its prompts went unanswered. */
export interface PromptSession {
  /** For SSH_ASKPASS. */
  program: string;
  /** What the program needs in ssh's environment to reach this host. */
  env: Record<string, string>;
  /** The prompt nobody answered (cancelled or timed out), if any. */
  unanswered(): Attempt['unanswered'];
  /** The attempt is over: its token stops working and its open prompts are cancelled. */
  end(): void;
}

type PromptEvents = {
  prompt: [Prompt];
  ended: [Events['connection.promptEnded']];
};

export class SshPrompts extends EventEmitter<PromptEvents> {
  private readonly socketPath: string;
  private readonly program: string;
  private readonly attempts = new Map<string, Attempt>();
  private readonly pending = new Map<string, Pending>();
  private listening?: Promise<void>;
  private server?: net.Server;

  constructor(
    private readonly runDir: string,
    readonly timeoutMs = PROMPT_TIMEOUT_MS,
  ) {
    super();
    this.socketPath = path.join(runDir, 'askpass.sock');
    this.program = path.join(runDir, 'askpass');
  }

  /** Starts serving prompts for one connection attempt to `uri`. */
  async session(uri: string): Promise<PromptSession> {
    await this.listen();
    const token = randomBytes(32).toString('hex');
    const attempt: Attempt = { uri };
    this.attempts.set(token, attempt);
    return {
      program: this.program,
      env: { DOMUS_ASKPASS_SOCKET: this.socketPath, DOMUS_ASKPASS_TOKEN: token },
      unanswered: () => attempt.unanswered,
      end: () => {
        this.attempts.delete(token);
        for (const [id, p] of this.pending) if (p.attempt === attempt) this.finish(id, undefined, 'cancelled');
      },
    };
  }

  /** A client's answer to prompt `id`; `undefined` cancels it. */
  answer(id: string, answer: string | undefined): void {
    if (!this.pending.has(id)) throw invalidArg(`no ssh prompt ${id} is waiting (it was answered, cancelled or timed out)`);
    this.finish(id, answer, answer === undefined ? 'cancelled' : 'answered');
  }

  /** Cancels the prompts of attempts to `uri` (the connection was closed or removed meanwhile). */
  cancelFor(uri: string): void {
    for (const [id, p] of this.pending) if (p.attempt.uri === uri) this.finish(id, undefined, 'cancelled');
  }

  /** The prompts waiting for an answer, for a client that arrives while one is open. */
  list(): Prompt[] {
    return [...this.pending.values()].map((p) => p.prompt);
  }

  async close(): Promise<void> {
    for (const id of [...this.pending.keys()]) this.finish(id, undefined, 'cancelled');
    this.attempts.clear();
    const server = this.server;
    this.server = undefined;
    this.listening = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    fs.rmSync(this.socketPath, { force: true });
  }

  private listen(): Promise<void> {
    this.listening ??= new Promise<void>((resolve, reject) => {
      // ssh runs SSH_ASKPASS with execlp: one program, no arguments of ours. Inside Electron's
      // utility process execPath is Electron itself, which runs the helper as plain Node when told to.
      const electron = process.versions.electron ? 'ELECTRON_RUN_AS_NODE=1 ' : '';
      const helper = path.join(APP_ROOT, 'dist', 'host', 'askpass.mjs');
      writeFileAtomic(this.program, `#!/bin/sh\n${electron}exec ${shellQuote(process.execPath)} ${shellQuote(helper)} "$@"\n`, 0o700);
      fs.rmSync(this.socketPath, { force: true });
      const server = net.createServer((conn) => this.serve(conn));
      server.once('error', reject);
      server.listen(this.socketPath, () => {
        fs.chmodSync(this.socketPath, 0o600);
        server.off('error', reject);
        server.on('error', (err) => log('warn', `ssh prompt socket ${this.socketPath}: ${err.message}`));
        this.server = server;
        resolve();
      });
    }).catch((err: Error) => {
      this.listening = undefined;
      throw err;
    });
    return this.listening;
  }

  /** One prompt from one run of the helper: a JSON line {token, prompt, hint}, answered by one JSON reply. */
  private serve(conn: net.Socket): void {
    let text = '';
    let id: string | undefined;
    conn.setEncoding('utf8');
    conn.on('error', () => undefined);
    conn.on('data', (chunk: string) => {
      if (id !== undefined) return;
      text += chunk;
      const nl = text.indexOf('\n');
      if (nl < 0) {
        if (text.length > MAX_REQUEST) conn.destroy();
        return;
      }
      let req: { token?: unknown; prompt?: unknown; hint?: unknown };
      try {
        req = JSON.parse(text.slice(0, nl)) as typeof req;
      } catch {
        conn.destroy();
        return;
      }
      const attempt = typeof req.token === 'string' ? this.attempts.get(req.token) : undefined;
      if (!attempt || typeof req.prompt !== 'string') {
        conn.end(JSON.stringify({}));
        return;
      }
      id = randomUUID();
      const promptText = req.prompt.trim();
      // ssh asks yes/no questions (an unknown host key) in the open; passphrases and passwords are secret.
      const secret = req.hint !== 'confirm' && !/\(yes\/no(\/\[fingerprint\])?\)\?$/.test(promptText);
      const prompt: Prompt = { uri: attempt.uri, id, text: promptText, secret };
      const promptId = id;
      const timer = setTimeout(() => this.finish(promptId, undefined, 'timed out'), this.timeoutMs);
      this.pending.set(id, { prompt, attempt, timer, reply: (answer) => conn.end(JSON.stringify(answer === undefined ? {} : { answer })) });
      // ssh gave up on the prompt (the attempt was cancelled, ssh was killed).
      conn.on('close', () => this.finish(promptId, undefined, 'cancelled'));
      this.emit('prompt', prompt);
    });
  }

  private finish(id: string, answer: string | undefined, outcome: Ending): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.attempt.unanswered = outcome === 'answered' ? undefined : { text: p.prompt.text, outcome };
    p.reply(answer);
    this.emit('ended', { uri: p.prompt.uri, id, outcome });
  }
}

/** Opens libvirt URIs with ssh's questions going to Domus's clients; other transports open as they are. */
export function promptingOpener(prompts: SshPrompts): RpcOpener {
  return async (uri) => {
    if (parseUri(uri).transport !== 'ssh') return RpcClient.connect(uri);
    const session = await prompts.session(uri);
    try {
      return await RpcClient.connect(uri, { sshAskpass: session.program, sshEnv: session.env });
    } catch (err) {
      // ssh only says that it could not log in; the reason is the question nobody answered.
      const unanswered = session.unanswered();
      if (!unanswered) throw err;
      const why = unanswered.outcome === 'timed out' ? `nobody answered within ${Math.round(prompts.timeoutMs / 1000)} s` : 'the prompt was cancelled';
      throw new HostError('AUTH_CANCELLED', `ssh asked "${unanswered.text}" and ${why}`);
    } finally {
      session.end();
    }
  };
}
