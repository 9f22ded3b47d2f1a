// The network's DNS responder at the gateway address: A records for the network's own names
// (static DHCP hosts, leased hostnames, <dns><host> entries), with or without the network's domain.
// A name under the network's domain that is not known is NXDOMAIN. Other names are forwarded to the
// host's resolver on a NAT network (the caller resolves them and builds the answer with the reply
// function handed back) and REFUSED on an isolated one, which has no way out.

export const DNS_PORT = 53;
const TYPE_A = 1;
const TYPE_ANY = 255;
const CLASS_IN = 1;
const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
const TTL_SECONDS = 60;

interface Question {
  name: string;
  type: number;
  klass: number;
  /** End of the question section in the query. */
  end: number;
}

/** The first question of a standard query, or undefined when the message is not one we can read. */
function readQuestion(q: Buffer): Question | undefined {
  if (q.length < 12) return undefined;
  const labels: string[] = [];
  let at = 12;
  let total = 0;
  for (;;) {
    if (at >= q.length) return undefined;
    const len = q[at]!;
    // Compression pointers (0xC0) cannot appear in the first question; other high bits are reserved.
    if (len & 0xc0) return undefined;
    at++;
    if (len === 0) break;
    if (at + len > q.length) return undefined;
    total += len + 1;
    if (total > 255) return undefined;
    labels.push(q.toString('latin1', at, at + len));
    at += len;
  }
  if (at + 4 > q.length) return undefined;
  return { name: labels.join('.').toLowerCase(), type: q.readUInt16BE(at), klass: q.readUInt16BE(at + 2), end: at + 4 };
}

export interface DnsNames {
  domain?: string;
  /** Lower-case host names (without the domain) and full names → address. */
  lookup(name: string): number | undefined;
  /** Names not the network's own go to the host's resolver (NAT networks). */
  forward?: boolean;
}

/**
 * A query for the host's resolver: `name`'s IPv4 addresses are looked up by the caller, and
 * reply() builds the answer from them ([] for a name that does not exist, undefined when the
 * lookup failed or took too long).
 */
export interface ForwardedQuery {
  name: string;
  reply(addresses: number[] | undefined): Buffer;
}

/**
 * The answer to one query, a query to forward, or undefined for a message that gets none (a
 * response, garbage).
 */
export function answerDns(query: Buffer, names: DnsNames): Buffer | ForwardedQuery | undefined {
  if (query.length < 12) return undefined;
  const flags = query.readUInt16BE(2);
  if (flags & 0x8000) return undefined; // a response
  const opcode = (flags >> 11) & 0xf;
  const header = (rcode: number, answers: number, questionEnd: number, recursed = false): Buffer => {
    const out = Buffer.alloc(12);
    out.writeUInt16BE(query.readUInt16BE(0), 0);
    // QR, the query's opcode and RD; AA for our own names, RA only where the host's resolver answered.
    out.writeUInt16BE(0x8000 | (opcode << 11) | (recursed ? 0x0080 : 0x0400) | (flags & 0x0100) | rcode, 2);
    out.writeUInt16BE(questionEnd > 12 ? 1 : 0, 4);
    out.writeUInt16BE(answers, 6);
    return out;
  };
  if (opcode !== 0) return header(RCODE.NOTIMP, 0, 12);
  const q = readQuestion(query);
  if (!q || query.readUInt16BE(4) !== 1) return header(RCODE.FORMERR, 0, 12);
  const question = query.subarray(12, q.end);
  const own = names.domain && (q.name === names.domain || q.name.endsWith(`.${names.domain}`));
  const short = own && q.name !== names.domain ? q.name.slice(0, -names.domain!.length - 1) : q.name;
  const ip = q.klass === CLASS_IN ? (names.lookup(q.name) ?? (own ? names.lookup(short) : undefined)) : undefined;
  if (ip === undefined) {
    if (own || !names.forward || q.klass !== CLASS_IN || !q.name) return Buffer.concat([header(own ? RCODE.NXDOMAIN : RCODE.REFUSED, 0, q.end), question]);
    return {
      name: q.name,
      reply: (addresses) => {
        if (addresses === undefined) return Buffer.concat([header(RCODE.SERVFAIL, 0, q.end, true), question]);
        if (addresses.length === 0) return Buffer.concat([header(RCODE.NXDOMAIN, 0, q.end, true), question]);
        return recordsFor(q, addresses, (n) => header(RCODE.NOERROR, n, q.end, true), question);
      },
    };
  }
  return recordsFor(q, [ip], (n) => header(RCODE.NOERROR, n, q.end), question);
}

/** A records for an A (or ANY) question; for other types the name exists with no such record (NODATA). */
function recordsFor(q: Question, addresses: number[], header: (answers: number) => Buffer, question: Buffer): Buffer {
  if (q.type !== TYPE_A && q.type !== TYPE_ANY) return Buffer.concat([header(0), question]);
  // A UDP answer stays within 512 bytes: 15 records of 16 bytes after the longest question (272).
  const list = addresses.slice(0, 15);
  const answers = list.map((ip) => {
    const answer = Buffer.alloc(16);
    answer.writeUInt16BE(0xc00c, 0); // the name at offset 12 (the question's)
    answer.writeUInt16BE(TYPE_A, 2);
    answer.writeUInt16BE(CLASS_IN, 4);
    answer.writeUInt32BE(TTL_SECONDS, 6);
    answer.writeUInt16BE(4, 10);
    answer.writeUInt32BE(ip >>> 0, 12);
    return answer;
  });
  return Buffer.concat([header(answers.length), question, ...answers]);
}
