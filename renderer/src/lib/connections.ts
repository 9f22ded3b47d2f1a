// Libvirt connection URIs as virt-manager's Add Connection dialog writes them, how a connection is
// named in the tree, and how a domain is told apart from a domain of another connection.
import { ConnectionUri } from '@shared/api';

export type Transport = 'local' | 'ssh' | 'tcp' | 'tls';

export const TRANSPORT_LABELS: Record<Transport, string> = { local: 'Local', ssh: 'SSH', tcp: 'TCP', tls: 'TLS' };

export interface UriForm {
  /** libvirt's driver name; the dialog offers QEMU/KVM. */
  hypervisor: 'qemu';
  transport: Transport;
  /** SSH only: the account on the far side (ssh's default when empty). */
  username: string;
  /** host, host:port, or [IPv6]:port; unused for Local. */
  hostname: string;
}

const HOSTNAME = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV6 = /^[0-9A-Fa-f:.]+$/;
const USERNAME = /^[A-Za-z0-9._][A-Za-z0-9._-]*$/;

/** Splits "host", "host:port" or "[v6]:port"; null when it is none of those. */
function splitHost(text: string): { host: string; port?: number } | null {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  const plain = /^([^:[\]]+)(?::(\d+))?$/.exec(text);
  const match = v6 ?? plain;
  if (!match) return null;
  const host = match[1];
  if (v6 ? !IPV6.test(host) : !HOSTNAME.test(host)) return null;
  if (match[2] === undefined) return { host };
  const port = Number(match[2]);
  return port >= 1 && port <= 65535 ? { host, port } : null;
}

/** What is wrong with each field, as the dialog shows it under the field; empty when nothing is. */
export function uriFormProblems(form: UriForm): { username?: string; hostname?: string } {
  const problems: { username?: string; hostname?: string } = {};
  if (form.transport === 'local') return problems;
  const hostname = form.hostname.trim();
  if (!hostname) problems.hostname = 'Enter the host name or address of the remote host.';
  else if (!splitHost(hostname)) problems.hostname = 'Expected a host name or address, with an optional port (host:22, [::1]:16509).';
  const username = form.username.trim();
  if (form.transport === 'ssh' && username && !USERNAME.test(username)) problems.username = 'A user name has letters, digits, “.”, “_” and “-” only.';
  return problems;
}

/** The URI the fields make, as virt-manager generates it (qemu+ssh://user@host:port/system). */
export function buildUri(form: UriForm): string {
  if (form.transport === 'local') return `${form.hypervisor}:///system`;
  const user = form.transport === 'ssh' && form.username.trim() ? `${encodeURIComponent(form.username.trim())}@` : '';
  return `${form.hypervisor}+${form.transport}://${user}${form.hostname.trim()}/system`;
}

/** Why a URI typed by hand cannot be a connection's, or '' when the host may be asked. */
export function customUriProblem(uri: string): string {
  if (!uri.trim()) return 'Enter a libvirt URI.';
  const parsed = ConnectionUri.safeParse(uri.trim());
  return parsed.success ? '' : (parsed.error.issues[0]?.message ?? 'Not a libvirt URI.');
}

export interface ParsedUri {
  driver: string;
  transport?: string;
  user?: string;
  host?: string;
  port?: number;
  path: string;
}

/** The parts of driver[+transport]://[user@][host][:port]/path[?query]; null for anything else. */
export function parseUri(uri: string): ParsedUri | null {
  const match = /^([a-z][a-z0-9]*)(?:\+([a-z]+))?:\/\/(?:([^@/]*)@)?(\[[^\]]*\]|[^:/?]*)(?::(\d+))?(\/[^?]*)?/.exec(uri);
  if (!match) return null;
  const [, driver, transport, user, host, port, path] = match;
  return {
    driver,
    transport,
    user: user ? decodeURIComponent(user) : undefined,
    host: host || undefined,
    port: port ? Number(port) : undefined,
    path: path ?? '/',
  };
}

const HYPERVISOR_NAMES: Record<string, string> = { qemu: 'QEMU/KVM', xen: 'Xen', lxc: 'LXC', test: 'Test', v86: 'v86' };

/** The tree's name for a connection: "QEMU/KVM: user@host" as virt-manager writes it, or the URI. */
export function connectionLabel(uri: string): string {
  const parsed = parseUri(uri);
  if (!parsed) return uri;
  const hypervisor = HYPERVISOR_NAMES[parsed.driver] ?? parsed.driver;
  const session = parsed.path === '/session' ? ' user session' : '';
  if (!parsed.host) return `${hypervisor}${session}`;
  const where = `${parsed.user ? `${parsed.user}@` : ''}${parsed.host}${parsed.port ? `:${parsed.port}` : ''}`;
  return `${hypervisor}${session}: ${where}`;
}

/**
 * A domain's key in this window: its UUID on this computer; on a libvirt connection, the
 * connection's URI, a space and the UUID (a URI has no spaces), as two hosts may hold one UUID.
 */
export type DomainKey = string;

export function domainKey(connection: string | undefined, uuid: string): DomainKey {
  return connection === undefined ? uuid : `${connection} ${uuid}`;
}

export function parseDomainKey(key: DomainKey): { connection?: string; uuid: string } {
  const space = key.lastIndexOf(' ');
  return space < 0 ? { uuid: key } : { connection: key.slice(0, space), uuid: key.slice(space + 1) };
}
