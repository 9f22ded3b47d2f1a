// The API contract between every client (renderer, CLI) and the host. Requests are validated
// with these schemas at the host boundary; replies and events are typed here so both sides agree.
// No Node, no DOM: this file is imported by the host, the CLI and the renderer.
import { z } from 'zod';
import type { DefinitionWarning, DomainConfig, DomainState, DomainStep, StateReason } from './domain.js';

export const API_VERSION = 1;

/** A domain is addressed by name or UUID, as virsh does. */
const DomainRef = z.string().min(1, 'domain name or UUID is required').max(256);
const Base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64');

/** What the "New VM" dialog sends; the host turns it into libvirt XML. */
export const NewDomainSpec = z.object({
  name: z
    .string()
    .min(1, 'name is required')
    .max(64, 'name is longer than 64 characters')
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.+-]*$/, 'name may hold letters, digits and _ . + - and must start with a letter or digit'),
  memoryMiB: z.number().int().min(16, 'memory must be at least 16 MiB').max(2047, 'memory above 2047 MiB is not supported by v86'),
  vcpus: z.number().int().min(1).max(1, 'the v86 engine emulates one CPU').default(1),
  boot: z.discriminatedUnion('kind', [
    z.object({
      kind: z.literal('pv'),
      kernel: z.string().min(1, 'kernel path is required'),
      initrd: z.string().optional(),
      cmdline: z.string().max(2048).optional(),
    }),
    z.object({
      kind: z.literal('cdrom'),
      iso: z.string().min(1, 'ISO path is required'),
      disk: z.string().optional(),
    }),
    z.object({
      kind: z.literal('disk'),
      disk: z.string().min(1, 'disk image path is required'),
    }),
  ]),
});
export type NewDomainSpec = z.infer<typeof NewDomainSpec>;

/** Request parameters, one schema per method. Unknown keys are refused (strict). */
export const RequestParams = {
  'host.status': z.object({}).strict(),
  'host.samples': z.object({}).strict(),
  'host.webShell': z.object({}).strict(),
  'host.stop': z.object({}).strict(),
  'domain.list': z.object({ all: z.boolean().default(true) }).strict(),
  'domain.define': z
    .object({
      xml: z.string().min(1, 'XML is empty').max(1 << 20, 'XML is larger than 1 MiB'),
      /** The generation the editor started from; a newer definition on the host is a conflict. */
      expectGeneration: z.number().int().nonnegative().optional(),
    })
    .strict(),
  'domain.create': z.object({ spec: NewDomainSpec }).strict(),
  /** A running domain is refused unless force: it then becomes transient and goes when it stops. */
  'domain.undefine': z.object({ domain: DomainRef, force: z.boolean().default(false) }).strict(),
  'domain.start': z.object({ domain: DomainRef }).strict(),
  'domain.destroy': z.object({ domain: DomainRef }).strict(),
  'domain.suspend': z.object({ domain: DomainRef }).strict(),
  'domain.resume': z.object({ domain: DomainRef }).strict(),
  'domain.info': z.object({ domain: DomainRef }).strict(),
  /** The live definition of a running domain; inactive: the persistent one (next boot). */
  'domain.xml': z.object({ domain: DomainRef, inactive: z.boolean().default(false) }).strict(),
  'domain.screenshot': z.object({ domain: DomainRef }).strict(),
  'domain.sendKeys': z
    .object({
      domain: DomainRef,
      text: z.string().max(4096).optional(),
      scancodes: z.array(z.number().int().min(0).max(0xff)).max(1024).optional(),
    })
    .strict()
    .refine((p) => (p.text === undefined) !== (p.scancodes === undefined), 'give either text or scancodes'),
  'domain.serialOpen': z.object({ domain: DomainRef }).strict(),
  'domain.serialClose': z.object({ domain: DomainRef }).strict(),
  'domain.serialWrite': z.object({ domain: DomainRef, data: Base64.max(65536) }).strict(),
  /** Clean shutdown: ask the guest (ACPI power button, else the guest agent), force off after the timeout. */
  'domain.shutdown': z
    .object({ domain: DomainRef, mode: z.enum(['acpi', 'agent', 'any']).default('any'), timeoutSec: z.number().int().min(0).max(3600).optional() })
    .strict(),
  'domain.reboot': z.object({ domain: DomainRef }).strict(),
  'domain.reset': z.object({ domain: DomainRef }).strict(),
  /** Transient domain (virsh create): defined only while it runs. */
  'domain.createTransient': z.object({ xml: z.string().min(1, 'XML is empty').max(1 << 20, 'XML is larger than 1 MiB'), paused: z.boolean().default(false) }).strict(),
  'domain.setAutostart': z.object({ domain: DomainRef, enabled: z.boolean() }).strict(),
  'domain.setOnHostStop': z.object({ domain: DomainRef, policy: z.enum(['shutdown', 'save', 'keep']) }).strict(),
  /** virsh desc: title/description, applied to the live domain, the definition, or both. */
  'domain.setMetadata': z
    .object({
      domain: DomainRef,
      title: z.string().max(1024).optional(),
      description: z.string().max(65536).optional(),
      live: z.boolean().default(false),
      config: z.boolean().default(false),
      expectGeneration: z.number().int().nonnegative().optional(),
    })
    .strict(),
  'domain.save': z.object({ domain: DomainRef, file: z.string().min(1, 'state file path is required') }).strict(),
  'domain.restore': z.object({ file: z.string().min(1, 'state file path is required'), paused: z.boolean().default(false) }).strict(),
  'domain.managedSave': z.object({ domain: DomainRef }).strict(),
  'domain.managedSaveRemove': z.object({ domain: DomainRef }).strict(),
  'domain.jobInfo': z.object({ domain: DomainRef, completed: z.boolean().default(false) }).strict(),
  'domain.jobAbort': z.object({ domain: DomainRef }).strict(),
  /** Says who this client is, for the trace (the CLI sends its pid and command line). */
  'session.hello': z.object({ kind: z.enum(['cli', 'gui', 'web', 'electron', 'script']), pid: z.number().int().optional(), label: z.string().max(256) }).strict(),
  /** domain: exact domain name; op: prefix of the operation or event name ('domain.' matches all domain ops). */
  'trace.subscribe': z.object({ domain: z.string().optional(), op: z.string().optional(), backlog: z.boolean().default(false) }).strict(),
  'trace.unsubscribe': z.object({}).strict(),
} as const;

export type Method = keyof typeof RequestParams;
export type Params<M extends Method> = z.input<(typeof RequestParams)[M]>;
export type ParsedParams<M extends Method> = z.output<(typeof RequestParams)[M]>;

export interface DomainSummary {
  uuid: string;
  name: string;
  /** virsh's Id column: a number while active, undefined when shut off. */
  id?: number;
  state: DomainState;
  reason: StateReason;
  step: DomainStep;
  persistent: boolean;
  engine: string;
  memoryKiB: number;
  currentMemoryKiB: number;
  vcpus: number;
  /** Guest CPU use in percent of one host core, sampled by the host from the runner. */
  cpuPercent: number;
  title?: string;
  autostart: boolean;
  onHostStop: OnHostStop;
  /** A managed-save image exists: the next start restores it. */
  managedSave: boolean;
  /** Bumped at every change of the persistent definition (edit conflicts). */
  generation: number;
}

export interface DomainInfo extends DomainSummary {
  osType: string;
  cpuTimeMs: number;
  config: DomainConfig;
  warnings: DefinitionWarning[];
}

export interface SampleGuest {
  id: 'pv' | 'cdrom' | 'disk';
  label: string;
  description: string;
  spec: NewDomainSpec;
}

export interface HostStatus {
  pid: number;
  version: string;
  uri: string;
  home: string;
  startedAt: number;
  firmware: { bios?: string; vgaBios?: string; problem?: string };
}

export interface Results {
  'host.status': HostStatus;
  'host.samples': { samples: SampleGuest[]; missing?: string };
  'host.webShell': { url: string };
  'host.stop': Record<string, never>;
  'domain.list': { domains: DomainSummary[] };
  'domain.define': { domain: DomainSummary; warnings: DefinitionWarning[] };
  'domain.create': { domain: DomainSummary; warnings: DefinitionWarning[] };
  'domain.undefine': Record<string, never>;
  'domain.start': { domain: DomainSummary };
  'domain.destroy': { domain: DomainSummary };
  'domain.suspend': { domain: DomainSummary };
  'domain.resume': { domain: DomainSummary };
  'domain.info': DomainInfo;
  'domain.xml': { xml: string; generation: number };
  'domain.screenshot': { png: string; width: number; height: number };
  'domain.sendKeys': Record<string, never>;
  'domain.serialOpen': { backlog: string };
  'domain.serialClose': Record<string, never>;
  'domain.serialWrite': Record<string, never>;
  'domain.shutdown': { domain: DomainSummary; method: 'acpi' | 'agent' | 'acpi+agent' };
  'domain.reboot': { domain: DomainSummary };
  'domain.reset': { domain: DomainSummary };
  'domain.createTransient': { domain: DomainSummary; warnings: DefinitionWarning[] };
  'domain.setAutostart': { domain: DomainSummary };
  'domain.setOnHostStop': { domain: DomainSummary };
  'domain.setMetadata': { domain: DomainSummary; generation: number };
  'domain.save': { job: JobInfo };
  'domain.restore': { domain: DomainSummary; job: JobInfo };
  'domain.managedSave': { job: JobInfo };
  'domain.managedSaveRemove': { domain: DomainSummary };
  'domain.jobInfo': { job: JobInfo | null };
  'domain.jobAbort': { job: JobInfo };
  'session.hello': Record<string, never>;
  'trace.subscribe': { backlog: TraceRecord[] };
  'trace.unsubscribe': Record<string, never>;
}

/** A long operation (save, restore, managed save, migrate, dump…): libvirt's job, with progress. */
export interface JobInfo {
  id: number;
  uuid: string;
  domain: string;
  operation: 'save' | 'restore' | 'managedsave' | 'dump' | 'migrate';
  status: 'running' | 'completed' | 'failed' | 'aborted';
  startedAt: number;
  elapsedMs: number;
  /** Bytes done and expected, when known. */
  processedBytes: number;
  totalBytes: number;
  error?: string;
}

/** One line of the live trace: who asked what of which domain, with which result. */
export interface TraceRecord {
  seq: number;
  time: number;
  kind: 'request' | 'event';
  client?: { kind: string; label: string; pid?: number };
  domain?: string;
  job?: number;
  op: string;
  args?: unknown;
  ok?: boolean;
  result?: string;
  error?: string;
  durationMs?: number;
}

export type OnHostStop = 'shutdown' | 'save' | 'keep';

export interface HostStopProgress {
  uuid: string;
  name: string;
  policy: OnHostStop;
  step: 'pending' | 'shutting-down' | 'saving' | 'done' | 'failed';
  message?: string;
}
export type Result<M extends Method> = Results[M];

export interface Events {
  /** A lifecycle change, with libvirt's state and reason (VIR_DOMAIN_EVENT_*). */
  'domain.lifecycle': { domain: DomainSummary; event: LifecycleEvent };
  'domain.defined': { domain: DomainSummary };
  'domain.undefined': { uuid: string; name: string };
  'domain.stats': { uuid: string; cpuPercent: number; rssBytes: number };
  /** Serial output of a domain whose serial console this client opened. */
  'domain.serial': { uuid: string; data: string };
  'job.progress': { job: JobInfo };
  'job.completed': { job: JobInfo };
  'trace.record': { record: TraceRecord };
  /** Host stop: what each running domain's on-stop policy is doing. */
  'host.stopping': { domains: HostStopProgress[] };
}
export type EventName = keyof Events;
/** libvirt's VIR_DOMAIN_EVENT_* types (the reason is in the summary), plus 'step' for transitions. */
export type LifecycleEvent =
  | 'defined'
  | 'undefined'
  | 'started'
  | 'suspended'
  | 'resumed'
  | 'stopped'
  | 'shutdown'
  | 'rebooted'
  | 'crashed'
  | 'step';

/** Error codes, after libvirt's virErrorNumber where one fits. */
export type ErrorCode =
  | 'bad-request'
  | 'unknown-method'
  | 'invalid-arg'
  | 'no-domain'
  | 'operation-invalid'
  | 'xml-invalid'
  | 'unsupported'
  | 'conflict'
  | 'engine-failed'
  | 'internal';

export interface ApiError {
  code: ErrorCode;
  message: string;
}

// Wire envelopes.
export const RequestEnvelope = z
  .object({
    type: z.literal('request'),
    id: z.number().int().nonnegative(),
    method: z.string().min(1),
    params: z.unknown().optional(),
  })
  .strict();
export type RequestEnvelope = z.infer<typeof RequestEnvelope>;

export type ReplyEnvelope =
  | { type: 'reply'; id: number; ok: true; result: unknown }
  | { type: 'reply'; id: number; ok: false; error: ApiError };

export interface EventEnvelope<E extends EventName = EventName> {
  type: 'event';
  event: E;
  data: Events[E];
}

export type ServerMessage = ReplyEnvelope | EventEnvelope;

export function isMethod(name: string): name is Method {
  return Object.prototype.hasOwnProperty.call(RequestParams, name);
}

/** Formats a zod error as one line naming each bad field. */
export function describeZodError(err: z.ZodError): string {
  return err.issues
    .map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message))
    .join('; ');
}
