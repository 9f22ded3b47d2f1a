// The SSH_ASKPASS program of qemu+ssh:// connections (bundled as dist/host/askpass.mjs). ssh runs it
// with its prompt as the only argument and reads the answer from its stdout. It hands the prompt to
// the Domus host that started ssh, over the socket and with the one-time token in its environment
// (askpass-server.ts), and waits for a client's answer. No answer (cancelled, timed out, the host
// gone) is exit status 1, which ssh takes as a cancelled prompt.
import net from 'node:net';

const socket = process.env.DOMUS_ASKPASS_SOCKET;
const token = process.env.DOMUS_ASKPASS_TOKEN;
if (!socket || !token) {
  process.stderr.write('domus askpass: DOMUS_ASKPASS_SOCKET and DOMUS_ASKPASS_TOKEN must be set (ssh runs this for a Domus host)\n');
  process.exit(1);
}
let reply = '';
const conn = net.connect(socket);
conn.setEncoding('utf8');
conn.on('connect', () => {
  conn.write(`${JSON.stringify({ token, prompt: process.argv[2] ?? '', hint: process.env.SSH_ASKPASS_PROMPT })}\n`);
});
conn.on('data', (d: string) => (reply += d));
conn.on('error', (err) => {
  process.stderr.write(`domus askpass: cannot reach the Domus host: ${err.message}\n`);
  process.exit(1);
});
conn.on('end', () => {
  let answer: unknown;
  try {
    answer = (JSON.parse(reply) as { answer?: unknown }).answer;
  } catch {
    answer = undefined;
  }
  if (typeof answer !== 'string') process.exit(1);
  process.stdout.write(`${answer}\n`, () => process.exit(0));
});
