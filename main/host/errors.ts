// The host's errors: each carries one of libvirt's error classes and reads as virsh prints it
// ("Requested operation is not valid: domain is not running"). Anything thrown that is not a
// HostError is a bug, reported to the client as INTERNAL_ERROR (api-session.ts).
import { errorMessage, type ErrorCode } from '../../shared/errors.js';

export class HostError extends Error {
  /** `detail` is what follows the class's wording; `message` is the whole line. */
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
  ) {
    super(errorMessage(code, detail));
    this.name = 'HostError';
  }
}

export const invalidArg = (detail: string): HostError => new HostError('INVALID_ARG', detail);
export const noDomain = (ref: string): HostError => new HostError('NO_DOMAIN', `no domain with matching name '${ref}'`);
export const operationInvalid = (detail: string): HostError => new HostError('OPERATION_INVALID', detail);
export const operationUnsupported = (detail: string): HostError => new HostError('OPERATION_UNSUPPORTED', detail);
export const operationFailed = (detail: string): HostError => new HostError('OPERATION_FAILED', detail);
export const configUnsupported = (detail: string): HostError => new HostError('CONFIG_UNSUPPORTED', detail);
export const xmlError = (detail: string): HostError => new HostError('XML_ERROR', detail);
