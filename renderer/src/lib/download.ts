/** Saves bytes as a file the way the shell does downloads (Electron shows its save dialog). */
export function downloadBytes(bytes: Uint8Array<ArrayBuffer>, fileName: string, type: string): void {
  const url = URL.createObjectURL(new Blob([bytes], { type }));
  const link = document.createElement('a');
  link.href = url;
  link.download = fileName;
  link.click();
  // The download reads the blob asynchronously; revoking at once can cut it off.
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
