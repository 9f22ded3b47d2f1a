// The host's log: one line per record, to stderr (the daemon redirects it to domusd.log).
export function log(level: 'info' | 'warn' | 'error', message: string): void {
  process.stderr.write(`${new Date().toISOString()} ${level} ${message}\n`);
}
