// The serial helper's parsing of a shell's answer: the output between the echoed command line and
// the end marker, also when the shell printed its prompt while the line was being typed and echoed
// the line a second time after it (seen on a loaded machine with a libvirt guest's console).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ApiClient } from '../../shared/client.js';
import { SerialWatch } from './harness.js';

/** A client whose guest answers each serial write with `answer(line, id)`. */
function fakeClient(answer: (line: string, id: string) => string): ApiClient {
  let listener: (d: { uuid: string; data: string }) => void = () => undefined;
  return {
    on: (_event: string, cb: typeof listener) => (listener = cb),
    call: async (_method: string, p: { data: string }) => {
      const line = Buffer.from(p.data, 'base64').toString('latin1');
      const id = /"END""(\w+)"/.exec(line)![1]!;
      setImmediate(() => listener({ uuid: 'u', data: Buffer.from(answer(line, id), 'latin1').toString('base64') }));
      return {};
    },
  } as unknown as ApiClient;
}

describe('SerialWatch.sh', () => {
  it('returns what the command printed, after the echoed line', async () => {
    const watch = new SerialWatch(fakeClient((line, id) => `${line.replace('\n', '\r\n')}still-42\r\nEND${id}\r\ndomus# `), 'u');
    assert.equal(await watch.sh('echo still-$((6*7))', 2000), 'still-42\n');
  });

  it('also when the prompt came mid-line and the shell echoed the line again', async () => {
    // The line ending of the previous answer's end marker arrives after that answer was taken.
    const watch = new SerialWatch(fakeClient((line, id) => `\r\n${line.slice(0, 25)}domus# ${line.replace('\n', '\r\n')}still-42\r\nEND${id}\r\ndomus# `), 'u');
    assert.equal(await watch.sh('echo still-$((6*7))', 2000), 'still-42\n');
  });
});
