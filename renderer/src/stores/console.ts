// A running guest's console beyond its display's pixels: keys (Send Key, typed text), screenshots,
// where its VNC server listens, and its serial line, shared by the terminals on screen. Failures
// of what the person pressed become toasts naming the guest; the serial line's reports its own.
// A guest is named by its domain key (lib/connections.ts): each call goes to its connection.
import { defineStore } from 'pinia';
import { ref } from 'vue';
import type { VncDisplay } from '@shared/api';
import { base64ToBytes, bytesToBase64 } from '../lib/base64';
import type { KeyCombo } from '../lib/consoleKeys';
import { typingChunks } from '../lib/typeText';
import { domainKey, parseDomainKey, type DomainKey } from '../lib/connections';
import { hostConnection } from './api';
import { useDomainsStore } from './domains';
import { useToastStore } from './toasts';

/** Raw bytes per domain.serialWrite: base64 of 48 KiB stays under the 64 KiB the schema allows. */
const SERIAL_WRITE_CHUNK = 48 * 1024;

export const useConsoleStore = defineStore('console', () => {
  const host = hostConnection();
  const domains = useDomainsStore();
  const toasts = useToastStore();
  /** Domains whose screenshot is being taken, by key. */
  const shooting = ref<Record<DomainKey, true>>({});
  /** The terminals on screen per domain key, handed the guest's serial output as it arrives. */
  const serialReaders = new Map<DomainKey, Set<(bytes: Uint8Array<ArrayBuffer>) => void>>();
  const encoder = new TextEncoder();

  function nameOf(key: DomainKey): string {
    return domains.get(key)?.name ?? parseDomainKey(key).uuid;
  }

  /** The domain's UUID for the request, and the connection the request goes to. */
  function target(key: DomainKey): { domain: string; opts: { connection?: string } } {
    const { connection, uuid } = parseDomainKey(key);
    return { domain: uuid, opts: connection === undefined ? {} : { connection } };
  }

  /** The display as a PNG; null when it failed (a toast says why). */
  async function screenshot(key: DomainKey): Promise<Uint8Array<ArrayBuffer> | null> {
    if (shooting.value[key]) return null;
    shooting.value[key] = true;
    const { domain, opts } = target(key);
    try {
      const { png } = await host.call('domain.screenshot', { domain }, opts);
      return base64ToBytes(png);
    } catch (err) {
      toasts.failure(`Could not take a screenshot of “${nameOf(key)}”`, err);
      return null;
    } finally {
      delete shooting.value[key];
    }
  }

  async function sendKey(key: DomainKey, combo: KeyCombo): Promise<void> {
    const { domain, opts } = target(key);
    try {
      await host.call('domain.sendKey', { domain, codeset: 'linux', keycodes: combo.keys }, opts);
    } catch (err) {
      toasts.failure(`Could not send ${combo.label} to “${nameOf(key)}”`, err);
    }
  }

  async function typeText(key: DomainKey, text: string): Promise<void> {
    const { domain, opts } = target(key);
    try {
      for (const chunk of typingChunks(text)) await host.call('domain.sendKeys', { domain, text: chunk }, opts);
    } catch (err) {
      toasts.failure(`Could not type the text into “${nameOf(key)}”`, err);
    }
  }

  /** Where the VNC server listens now; null when the engine cannot say. */
  function vncDisplay(key: DomainKey): Promise<VncDisplay | null> {
    const { domain, opts } = target(key);
    return host.call('domain.vncDisplay', { domain }, opts).catch(() => null);
  }

  /** Subscribes this window to the guest's serial output; answers what the line held already. */
  async function serialOpen(key: DomainKey): Promise<Uint8Array<ArrayBuffer>> {
    const { domain, opts } = target(key);
    const { backlog } = await host.call('domain.serialOpen', { domain }, opts);
    return base64ToBytes(backlog);
  }

  /** The host may already have dropped the line (guest stopped, connection lost): that is fine. */
  function serialClose(key: DomainKey): void {
    const { domain, opts } = target(key);
    if (host.state === 'connected') host.call('domain.serialClose', { domain }, opts).catch(() => undefined);
  }

  /** Sends all pieces at once (the connection keeps their order); rejects if any was refused. */
  async function serialWrite(key: DomainKey, text: string): Promise<void> {
    const { domain, opts } = target(key);
    const bytes = encoder.encode(text);
    const writes: Promise<unknown>[] = [];
    for (let i = 0; i < bytes.length; i += SERIAL_WRITE_CHUNK) {
      writes.push(host.call('domain.serialWrite', { domain, data: bytesToBase64(bytes.subarray(i, i + SERIAL_WRITE_CHUNK)) }, opts));
    }
    await Promise.all(writes);
  }

  /** Hands `reader` the guest's serial output until the returned function is called. */
  function onSerialOutput(key: DomainKey, reader: (bytes: Uint8Array<ArrayBuffer>) => void): () => void {
    let readers = serialReaders.get(key);
    if (!readers) serialReaders.set(key, (readers = new Set()));
    readers.add(reader);
    return () => {
      readers.delete(reader);
      if (!readers.size) serialReaders.delete(key);
    };
  }

  function deliver(key: DomainKey, data: string): void {
    const readers = serialReaders.get(key);
    if (!readers) return;
    const bytes = base64ToBytes(data);
    for (const reader of readers) reader(bytes);
  }

  host.on('domain.serial', ({ uuid, data }) => deliver(uuid, data));
  host.onRemote('domain.serial', ({ uuid, data }, connection) => deliver(domainKey(connection, uuid), data));

  return { shooting, screenshot, sendKey, typeText, vncDisplay, serialOpen, serialClose, serialWrite, onSerialOutput };
});
