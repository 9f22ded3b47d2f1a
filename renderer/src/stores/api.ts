// The host connection the stores talk through. Only stores call the host, so pending state,
// errors and toasts have one place. main.ts sets the shell's connection before the first store is
// used; the stores' unit tests set one over a fake transport.
import type { HostConnection } from '../api/connection';

let current: HostConnection | undefined;

export function setHostConnection(connection: HostConnection): void {
  current = connection;
}

export function hostConnection(): HostConnection {
  if (!current) throw new Error('no host connection: setHostConnection() comes before the first store');
  return current;
}
