// The questions a person may turn off with "Don't ask again" (Force Off, Delete) and back on in
// Preferences, as virt-manager's confirmation preferences; kept in this browser's localStorage.
import { defineStore } from 'pinia';
import { ref } from 'vue';

export type Question = 'forceOff' | 'delete';

const KEY = 'domus.dontAsk.';

export const useConfirmationsStore = defineStore('confirmations', () => {
  const ask = ref<Record<Question, boolean>>({
    forceOff: localStorage.getItem(KEY + 'forceOff') === null,
    delete: localStorage.getItem(KEY + 'delete') === null,
  });

  function setAsk(question: Question, on: boolean): void {
    ask.value[question] = on;
    if (on) localStorage.removeItem(KEY + question);
    else localStorage.setItem(KEY + question, '1');
  }

  return { ask, setAsk };
});
