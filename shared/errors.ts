// libvirt's error classes (virErrorNumber, without the VIR_ERR_ prefix) and the words virsh prints
// before each one's detail (libvirt's virErrorMsg), so that "domus" errors read as virsh's do.
// INTERNAL_ERROR is reserved for bugs: the host uses it only for exceptions nobody anticipated.

export const ERROR_WORDING = {
  INTERNAL_ERROR: 'internal error',
  NO_SUPPORT: 'this function is not supported by the connection driver',
  RPC: 'RPC error',
  INVALID_ARG: 'invalid argument',
  ARGUMENT_UNSUPPORTED: 'argument unsupported',
  NO_DOMAIN: 'Domain not found',
  NO_STORAGE_POOL: 'Storage pool not found',
  NO_STORAGE_VOL: 'Storage volume not found',
  NO_NETWORK: 'Network not found',
  NO_DOMAIN_SNAPSHOT: 'Domain snapshot not found',
  XML_ERROR: 'XML error',
  CONFIG_UNSUPPORTED: 'unsupported configuration',
  OPERATION_INVALID: 'Requested operation is not valid',
  OPERATION_UNSUPPORTED: 'Operation not supported',
  OPERATION_FAILED: 'operation failed',
  OPERATION_TIMEOUT: 'Timed out during operation',
  OPERATION_ABORTED: 'operation aborted',
  AGENT_UNRESPONSIVE: 'Guest agent is not responding',
  AUTH_FAILED: 'authentication failed',
  /** A password or passphrase prompt was cancelled or not answered in time. */
  AUTH_CANCELLED: 'authentication cancelled',
  /** A system call failed (a full disk): libvirt prints only the detail, which names the file and strerror's words. */
  SYSTEM_ERROR: '',
  /**
   * Domus's one class libvirt lacks (libvirt has no definition generations): the definition was
   * changed by another client since the caller read it; clients reload instead of overwriting.
   */
  DEFINITION_CHANGED: 'definition changed',
} as const;

export type ErrorCode = keyof typeof ERROR_WORDING;

export const ERROR_CODES = Object.keys(ERROR_WORDING) as ErrorCode[];

/** The message virsh would print for an error of class `code`: "<wording>: <detail>". */
export function errorMessage(code: ErrorCode, detail: string): string {
  return ERROR_WORDING[code] ? `${ERROR_WORDING[code]}: ${detail}` : detail;
}
