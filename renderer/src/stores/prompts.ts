// ssh's questions while the host opens a qemu+ssh:// connection (a key's passphrase, a password,
// an unknown host key), in the order they came; the prompt dialog shows the first. One answered
// elsewhere (another window, the CLI), cancelled or timed out leaves when the host says it ended.
import { defineStore } from 'pinia';
import { computed, ref } from 'vue';
import type { Events } from '@shared/api';
import { connectionLabel } from '../lib/connections';
import { hostConnection } from './api';
import { useToastStore } from './toasts';

export type SshPrompt = Events['connection.prompt'];

export const usePromptsStore = defineStore('prompts', () => {
  const host = hostConnection();
  const queue = ref<SshPrompt[]>([]);
  /** The question being answered: its buttons wait for the host. */
  const sending = ref(false);
  const current = computed<SshPrompt | undefined>(() => queue.value[0]);

  const drop = (id: string): void => {
    queue.value = queue.value.filter((p) => p.id !== id);
  };
  const add = (prompt: SshPrompt): void => {
    if (!queue.value.some((p) => p.id === prompt.id)) queue.value = [...queue.value, prompt];
  };

  async function load(): Promise<void> {
    try {
      (await host.call('connection.prompts', {})).prompts.forEach(add);
    } catch (err) {
      if (host.state === 'connected') useToastStore().failure('Could not list the questions of ssh', err);
    }
  }

  /** Sends the answer, or with none cancels the question (the connection then fails). */
  async function reply(prompt: SshPrompt, answer?: string): Promise<void> {
    if (sending.value) return;
    sending.value = true;
    try {
      await host.call('connection.answer', answer === undefined ? { id: prompt.id, cancel: true } : { id: prompt.id, answer });
    } catch (err) {
      // Most likely it ended meanwhile (timed out, answered elsewhere): the connection's state says how it went.
      useToastStore().failure(`Could not answer ssh for ${connectionLabel(prompt.uri)}`, err);
    } finally {
      sending.value = false;
      drop(prompt.id);
    }
  }

  host.on('connection.prompt', add);
  host.on('connection.promptEnded', ({ id }) => drop(id));
  host.onState((state) => {
    if (state === 'connected') void load();
    else queue.value = [];
  });
  if (host.state === 'connected') void load();

  return { queue, current, sending, answer: (prompt: SshPrompt, text: string) => reply(prompt, text), cancel: (prompt: SshPrompt) => reply(prompt) };
});
