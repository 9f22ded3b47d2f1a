/** A line of runner.log (the runner's stderr, which the host reads; the last line says why a runner failed). */
export function log(level: 'info' | 'warn' | 'error', message: string): void {
  process.stderr.write(`${level}: ${message}\n`);
}
