// "Type clipboard text": text goes to the guest as keystrokes (domain.sendKeys), never on its own.

/** The contract takes 4096 characters per request; longer text goes in order, in pieces. */
const CHUNK = 4096;
/** Typing is slow (each key is pressed and released in the guest); more is almost surely a mistake. */
export const MAX_TYPED_TEXT = 65_536;

/** Line ends as Enter presses: the host types \n as Enter and refuses \r. */
function normalizeTypedText(text: string): string {
  return text.replace(/\r\n?/g, '\n');
}

/** The domain.sendKeys texts that type `text`, in order; refuses more than MAX_TYPED_TEXT characters. */
export function typingChunks(text: string): string[] {
  const normalized = normalizeTypedText(text);
  if (normalized.length > MAX_TYPED_TEXT) {
    throw new Error(`the text has ${normalized.length} characters; at most ${MAX_TYPED_TEXT} are typed at a time`);
  }
  const chars = [...normalized];
  const chunks: string[] = [];
  for (let i = 0; i < chars.length; i += CHUNK) chunks.push(chars.slice(i, i + CHUNK).join(''));
  return chunks;
}
