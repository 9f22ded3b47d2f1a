import { defineStore } from 'pinia';
import { ref } from 'vue';
import { errorMessage } from '../lib/format';

export type ToastKind = 'error' | 'info' | 'success';

export interface Toast {
  id: number;
  kind: ToastKind;
  title: string;
  message: string;
}

/** Errors stay longer: they usually need reading. */
const LIFETIME_MS: Record<ToastKind, number> = { error: 12_000, info: 6_000, success: 4_000 };
const MAX_TOASTS = 5;

export const useToastStore = defineStore('toasts', () => {
  const toasts = ref<Toast[]>([]);
  let nextId = 1;

  function push(kind: ToastKind, title: string, message = ''): void {
    const id = nextId++;
    toasts.value = [...toasts.value, { id, kind, title, message }].slice(-MAX_TOASTS);
    setTimeout(() => dismiss(id), LIFETIME_MS[kind]);
  }

  function dismiss(id: number): void {
    toasts.value = toasts.value.filter((t) => t.id !== id);
  }

  /** A failed action: `title` says what was attempted, the host's message says why it failed. */
  function failure(title: string, err: unknown): void {
    push('error', title, errorMessage(err));
  }

  return { toasts, push, dismiss, failure };
});
