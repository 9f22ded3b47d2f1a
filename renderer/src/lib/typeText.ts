// "Type clipboard text": text goes to the guest as keystrokes (domain.sendKeys), never on its own.
import { host } from '../api';

/** The contract takes 4096 characters per request; longer text goes in order, in pieces. */
const CHUNK = 4096;
/** Typing is slow (each key is pressed and released in the guest); more is almost surely a mistake. */
export const MAX_TYPED_TEXT = 65_536;

/** Line ends as Enter presses: the host types \n as Enter and refuses \r. */
export function normalizeTypedText(text: string): string {
  return text.replace(/\r\n?/g, '\n');
}

export async function typeText(domainUuid: string, text: string): Promise<void> {
  const normalized = normalizeTypedText(text);
  if (normalized.length > MAX_TYPED_TEXT) {
    throw new Error(`the text has ${normalized.length} characters; at most ${MAX_TYPED_TEXT} are typed at a time`);
  }
  const chars = [...normalized];
  for (let i = 0; i < chars.length; i += CHUNK) {
    await host.call('domain.sendKeys', { domain: domainUuid, text: chars.slice(i, i + CHUNK).join('') });
  }
}
