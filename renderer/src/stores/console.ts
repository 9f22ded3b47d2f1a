// A running guest's console beyond its display's pixels: keys (Send Key, typed text), screenshots,
// where its VNC server listens, and its serial line, shared by the terminals on screen. Failures
// of what the person pressed become toasts naming the guest; the serial line's reports its own.
import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { VncDisplay } from '@shared/api';
import { base64ToBytes, bytesToBase64 } from '../lib/base64';
import type { KeyCombo } from '../lib/consoleKeys';
import { typingChunks } from '../lib/typeText';
import { hostConnection } from './api';
import { useDomainsStore } from './domains';
import { useToastStore } from './toasts';

/** Raw bytes per domain.serialWrite: base64 of 48 KiB stays under the 64 KiB the schema allows. */
const SERIAL_WRITE_CHUNK = 48 * 1024;

export const useConsoleStore = defineStore('console', () => {
  const host = hostConnection();
  const domains = useDomainsStore();
  const toasts = useToastStore();
  /** Domains whose screenshot is being taken. */
  const shooting = ref<Record<string, true>>({});
  /** The terminals on screen per domain, handed the guest's serial output as it arrives. */
  const serialReaders = new Map<string, Set<(bytes: Uint8Array<ArrayBuffer>) => void>>();
  const encoder = new TextEncoder();

  function nameOf(uuid: string): string {
    return domains.byUuid[uuid]?.name ?? uuid;
  }

  /** The display as a PNG; null when it failed (a toast says why). */
  async function screenshot(uuid: string): Promise<Uint8Array<ArrayBuffer> | null> {
    if (shooting.value[uuid]) return null;
    shooting.value[uuid] = true;
    try {
      const { png } = await host.call('domain.screenshot', { domain: uuid });
      return base64ToBytes(png);
    } catch (err) {
      toasts.failure(`Could not take a screenshot of “${nameOf(uuid)}”`, err);
      return null;
    } finally {
      delete shooting.value[uuid];
    }
  }

  async function sendKey(uuid: string, combo: KeyCombo): Promise<void> {
    try {
      await host.call('domain.sendKey', { domain: uuid, codeset: 'linux', keycodes: combo.keys });
    } catch (err) {
      toasts.failure(`Could not send ${combo.label} to “${nameOf(uuid)}”`, err);
    }
  }

  async function typeText(uuid: string, text: string): Promise<void> {
    try {
      for (const chunk of typingChunks(text)) await host.call('domain.sendKeys', { domain: uuid, text: chunk });
    } catch (err) {
      toasts.failure(`Could not type the text into “${nameOf(uuid)}”`, err);
    }
  }

  /** Where the VNC server listens now; null when the engine cannot say. */
  function vncDisplay(uuid: string): Promise<VncDisplay | null> {
    return host.call('domain.vncDisplay', { domain: uuid }).catch(() => null);
  }

  /** Subscribes this window to the guest's serial output; answers what the line held already. */
  async function serialOpen(uuid: string): Promise<Uint8Array<ArrayBuffer>> {
    const { backlog } = await host.call('domain.serialOpen', { domain: uuid });
    return base64ToBytes(backlog);
  }

  /** The host may already have dropped the line (guest stopped, connection lost): that is fine. */
  function serialClose(uuid: string): void {
    if (host.state === 'connected') host.call('domain.serialClose', { domain: uuid }).catch(() => undefined);
  }

  /** Sends all pieces at once (the connection keeps their order); rejects if any was refused. */
  async function serialWrite(uuid: string, text: string): Promise<void> {
    const bytes = encoder.encode(text);
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < bytes.length; i += SERIAL_WRITE_CHUNK) {
      writes.push(host.call('domain.serialWrite', { domain: uuid, data: bytesToBase64(bytes.subarray(i, i + SERIAL_WRITE_CHUNK)) }));
    }
    await Promise.all(writes);
  }

  /** Hands `reader` the guest's serial output until the returned function is called. */
  function onSerialOutput(uuid: string, reader: (bytes: Uint8Array<ArrayBuffer>) => void): () => void {
    let readers = serialReaders.get(uuid);
    if (!readers) serialReaders.set(uuid, (readers = new Set()));
    readers.add(reader);
    return () => {
      readers.delete(reader);
      if (!readers.size) serialReaders.delete(uuid);
    };
  }

  host.on('domain.serial', ({ uuid, data }) => {
    const readers = serialReaders.get(uuid);
    if (!readers) return;
    const bytes = base64ToBytes(data);
    for (const reader of readers) reader(bytes);
  });

  return { shooting, screenshot, sendKey, typeText, vncDisplay, serialOpen, serialClose, serialWrite, onSerialOutput };
});
