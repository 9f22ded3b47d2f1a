// The host's errors: each carries one of libvirt's error classes and reads as virsh prints it
// ("Requested operation is not valid: domain is not running"). An engine that fails a request
// (a runner whose connection closed, a QMP command QEMU refused) throws an EngineFailure, reported
// as OPERATION_FAILED as libvirt reports its monitor's failures. Anything else thrown is a bug,
// reported to the client as INTERNAL_ERROR (api-session.ts).
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

/** What an engine (v86 runner, QEMU) failed to do; not a bug of the host. */
export class EngineFailure extends Error {
  override name = 'EngineFailure';
}

/** The API error for anything a handler threw: its class, or INTERNAL_ERROR for a bug. */
export function apiErrorOf(err: unknown): { code: ErrorCode; message: string } {
  if (err instanceof HostError) return { code: err.code, message: err.message };
  if (err instanceof EngineFailure) return { code: 'OPERATION_FAILED', message: errorMessage('OPERATION_FAILED', err.message) };
  return { code: 'INTERNAL_ERROR', message: errorMessage('INTERNAL_ERROR', (err as Error).message) };
}

// One constructor per class the host raises, so that each class is spelt in one place.
export const invalidArg = (detail: string): HostError => new HostError('INVALID_ARG', detail);
export const noDomain = (ref: string): HostError => new HostError('NO_DOMAIN', `no domain with matching name '${ref}'`);
export const noNetwork = (ref: string): HostError => new HostError('NO_NETWORK', `no network with matching name '${ref}'`);
export const noSnapshot = (name: string): HostError => new HostError('NO_DOMAIN_SNAPSHOT', `no domain snapshot with matching name '${name}'`);
export const noStoragePool = (detail: string): HostError => new HostError('NO_STORAGE_POOL', detail);
export const noStorageVol = (detail: string): HostError => new HostError('NO_STORAGE_VOL', detail);
export const operationInvalid = (detail: string): HostError => new HostError('OPERATION_INVALID', detail);
export const operationUnsupported = (detail: string): HostError => new HostError('OPERATION_UNSUPPORTED', detail);
export const operationFailed = (detail: string): HostError => new HostError('OPERATION_FAILED', detail);
export const configUnsupported = (detail: string): HostError => new HostError('CONFIG_UNSUPPORTED', detail);
export const xmlError = (detail: string): HostError => new HostError('XML_ERROR', detail);
export const systemError = (detail: string): HostError => new HostError('SYSTEM_ERROR', detail);
export const agentUnresponsive = (detail: string): HostError => new HostError('AGENT_UNRESPONSIVE', detail);
export const internalError = (detail: string): HostError => new HostError('INTERNAL_ERROR', detail);
export const definitionChanged = (detail: string): HostError => new HostError('DEFINITION_CHANGED', detail);
