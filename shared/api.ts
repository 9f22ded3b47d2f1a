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
  'domain.define': z.object({ xml: z.string().min(1, 'XML is empty').max(1 << 20, 'XML is larger than 1 MiB') }).strict(),
  'domain.create': z.object({ spec: NewDomainSpec }).strict(),
  'domain.undefine': z.object({ domain: DomainRef }).strict(),
  'domain.start': z.object({ domain: DomainRef }).strict(),
  'domain.destroy': z.object({ domain: DomainRef }).strict(),
  'domain.suspend': z.object({ domain: DomainRef }).strict(),
  'domain.resume': z.object({ domain: DomainRef }).strict(),
  'domain.info': z.object({ domain: DomainRef }).strict(),
  'domain.xml': z.object({ domain: DomainRef }).strict(),
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
}

export interface DomainInfo extends DomainSummary {
  osType: string;
  cpuTimeMs: number;
  autostart: boolean;
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
  'domain.xml': { xml: string };
  'domain.screenshot': { png: string; width: number; height: number };
  'domain.sendKeys': Record<string, never>;
  'domain.serialOpen': { backlog: string };
  'domain.serialClose': Record<string, never>;
  'domain.serialWrite': Record<string, never>;
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
}
export type EventName = keyof Events;
export type LifecycleEvent = 'defined' | 'undefined' | 'started' | 'suspended' | 'resumed' | 'stopped';

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
