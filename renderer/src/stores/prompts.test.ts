import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import type { Events } from '@shared/api';
import { connectFakeHost, settle, type FakeHostTransport } from '../testing/fakeHost';
import { usePromptsStore } from './prompts';
import { useToastStore } from './toasts';

const URI = 'qemu+ssh://root@server/system';
const prompt = (id: string, text = "Enter passphrase for key '/root/.ssh/id_ed25519':"): Events['connection.prompt'] => ({ uri: URI, id, text, secret: true });

describe('prompts store', () => {
  let host: FakeHostTransport;

  beforeEach(async () => {
    host = await connectFakeHost();
    host.answer('connection.prompts', () => ({ prompts: [prompt('early')] }));
    host.answer('connection.answer', () => ({}));
  });

  it('lists the questions already open, queues new ones, and drops those that ended elsewhere', async () => {
    const prompts = usePromptsStore();
    await settle();
    assert.equal(prompts.current?.id, 'early');
    host.emit('connection.prompt', prompt('later'));
    host.emit('connection.prompt', prompt('later'));
    await settle();
    assert.deepEqual(prompts.queue.map((p) => p.id), ['early', 'later']);
    host.emit('connection.promptEnded', { uri: URI, id: 'early', outcome: 'timed out' });
    await settle();
    assert.equal(prompts.current?.id, 'later');
  });

  it('answers the question or cancels it, and each leaves the queue', async () => {
    const prompts = usePromptsStore();
    await settle();
    host.emit('connection.prompt', prompt('second'));
    await settle();
    await prompts.answer(prompts.current!, 'sesame');
    assert.equal(prompts.current?.id, 'second');
    await prompts.cancel(prompts.current!);
    assert.equal(prompts.current, undefined);
    assert.deepEqual(host.sent('connection.answer'), [
      { id: 'early', answer: 'sesame' },
      { id: 'second', cancel: true },
    ]);
  });

  it('a question that ended before its answer arrived says so in a toast and leaves', async () => {
    host.answer('connection.answer', () => {
      throw { code: 'INVALID_ARG', message: 'invalid argument: no ssh prompt early is waiting (it was answered, cancelled or timed out)' };
    });
    const prompts = usePromptsStore();
    await settle();
    await prompts.answer(prompts.current!, 'late');
    assert.equal(prompts.current, undefined);
    assert.match(useToastStore().toasts[0].title, /^Could not answer ssh for QEMU\/KVM: root@server$/);
  });
});
