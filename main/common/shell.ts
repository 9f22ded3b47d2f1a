// POSIX shell quoting, for command lines Domus shows or hands to a shell (QEMU's exec: migration
// URIs, domxml-to-native, the QEMU log's "starting" line).

/** A word the shell reads back unchanged: bare when it has no special characters, else in single quotes. */
export function shellQuote(s: string): string {
  return /^[A-Za-z0-9_./=:,+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
