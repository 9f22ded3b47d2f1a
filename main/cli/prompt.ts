// ssh's questions while the host opens the connection `domus -c URI` names (a key's passphrase, a
// password, an unknown host key): asked on the terminal, a secret one without echo. Without a
// terminal nobody can answer here, so the question is cancelled and the open fails saying so.
import type { Events } from '../../shared/api.js';
import type { ApiClient } from '../../shared/client.js';

/** Answers the host's prompts for `uri` until the returned function is called. */
export function answerPrompts(api: ApiClient, uri: string): () => void {
  const interactive = Boolean(process.stdin.isTTY && process.stderr.isTTY);
  let queue = Promise.resolve();
  const answer = async (prompt: Events['connection.prompt']): Promise<void> => {
    let reply: string | undefined;
    if (interactive) reply = await ask(prompt.text, prompt.secret);
    else process.stderr.write(`ssh asks "${prompt.text}", but there is no terminal to answer it on (run domus in a terminal, or use ssh-agent or a key without a passphrase)\n`);
    // The prompt may have ended meanwhile (answered in the GUI, timed out): nothing left to do then.
    await api.call('connection.answer', reply === undefined ? { id: prompt.id, cancel: true } : { id: prompt.id, answer: reply }).catch(() => undefined);
  };
  return api.on('connection.prompt', (prompt) => {
    if (prompt.uri === uri) queue = queue.then(() => answer(prompt));
  });
}

/** One line from the terminal in raw mode; Ctrl+C or Ctrl+D on an empty line cancels. */
function ask(text: string, secret: boolean): Promise<string | undefined> {
  const stdin = process.stdin;
  // No echo from before the question shows: a quick typist's answer must not appear.
  stdin.setRawMode(true);
  process.stderr.write(`${text} `);
  return new Promise((resolve) => {
    let line = '';
    const done = (value: string | undefined): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      resolve(value);
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return done(line);
        if (ch === '\u0003' || (ch === '\u0004' && line === '')) return done(undefined);
        if (ch === '\u007f' || ch === '\b') {
          if (line && !secret) process.stderr.write('\b \b');
          line = line.slice(0, -1);
        } else if (ch >= ' ') {
          line += ch;
          if (!secret) process.stderr.write(ch);
        }
      }
    };
    stdin.setEncoding('utf8');
    stdin.on('data', onData);
    stdin.resume();
  });
}
