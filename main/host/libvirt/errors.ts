// libvirt's errors as they cross the wire (remote_error), and the numbers from its public headers
// that the protocol carries but the .x files do not define (virterror.h, libvirt-domain.h).
import type { remote_error } from './protocol/remote.js';

/** virErrorNumber (virterror.h), the codes Domus sends or tests for. */
export const VIR_ERR = {
  INTERNAL_ERROR: 1,
  NO_SUPPORT: 3,
  NO_CONNECT: 5,
  INVALID_CONN: 6,
  INVALID_DOMAIN: 7,
  INVALID_ARG: 8,
  OPERATION_FAILED: 9,
  XML_ERROR: 27,
  XML_DETAIL: 35,
  DOM_EXIST: 28,
  OPERATION_DENIED: 29,
  SYSTEM_ERROR: 38,
  RPC: 39,
  NO_DOMAIN: 42,
  NO_NETWORK: 43,
  AUTH_FAILED: 45,
  NO_STORAGE_POOL: 49,
  NO_STORAGE_VOL: 50,
  OPERATION_INVALID: 55,
  CONFIG_UNSUPPORTED: 67,
  OPERATION_TIMEOUT: 68,
  NO_DOMAIN_SNAPSHOT: 72,
  INVALID_STREAM: 73,
  ARGUMENT_UNSUPPORTED: 74,
  OPERATION_ABORTED: 78,
  AUTH_CANCELLED: 79,
  OPERATION_UNSUPPORTED: 84,
  AGENT_UNRESPONSIVE: 86,
  ACCESS_DENIED: 88,
  XML_INVALID_SCHEMA: 92,
  AUTH_UNAVAILABLE: 94,
} as const;

/** virErrorDomain (virterror.h), where an error comes from. */
export const VIR_FROM = {
  NONE: 0,
  RPC: 7,
  QEMU: 10,
  REMOTE: 13,
  STORAGE: 18,
  NETWORK: 19,
  DOMAIN: 20,
  STREAMS: 38,
  AUTH: 46,
  SSH: 50,
} as const;

/** virErrorLevel */
export const VIR_ERR_ERROR = 2;

/** virDomainEventID (libvirt-domain.h), for REMOTE_PROC_CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY. */
export const VIR_DOMAIN_EVENT_ID_LIFECYCLE = 0;
export const VIR_DOMAIN_EVENT_ID_REBOOT = 1;
export const VIR_DOMAIN_EVENT_ID_BALLOON_CHANGE = 13;

/** virDomainEventType: the `event` of a lifecycle message. */
export const VIR_DOMAIN_EVENT = {
  DEFINED: 0,
  UNDEFINED: 1,
  STARTED: 2,
  SUSPENDED: 3,
  RESUMED: 4,
  STOPPED: 5,
  SHUTDOWN: 6,
  PMSUSPENDED: 7,
  CRASHED: 8,
} as const;

/** virDrvFeature (libvirt_internal.h), asked with REMOTE_PROC_CONNECT_SUPPORTS_FEATURE. */
export const VIR_DRV_FEATURE_PROGRAM_KEEPALIVE = 10;
export const VIR_DRV_FEATURE_REMOTE_EVENT_CALLBACK = 14;

const CODE_NAMES = new Map<number, string>(Object.entries(VIR_ERR).map(([k, v]) => [v, `VIR_ERR_${k}`]));

/** An error a libvirt peer reported, or one the connection itself raised, with libvirt's numbers. */
export class LibvirtError extends Error {
  override name = 'LibvirtError';
  constructor(
    message: string,
    /** virErrorNumber */
    readonly code: number,
    /** virErrorDomain */
    readonly domain: number = VIR_FROM.RPC,
  ) {
    super(message);
  }
  /** `VIR_ERR_NO_DOMAIN` and the like, or the number when this module does not name it. */
  get codeName(): string {
    return CODE_NAMES.get(this.code) ?? String(this.code);
  }

  static fromRemote(e: remote_error): LibvirtError {
    return new LibvirtError(e.message ?? `libvirt error ${e.code}`, e.code, e.domain);
  }

  /** The wire form, for the server side. */
  toRemote(): remote_error {
    return { code: this.code, domain: this.domain, message: this.message, level: VIR_ERR_ERROR, dom: null, str1: null, str2: null, str3: null, int1: 0, int2: 0, net: null };
  }
}
