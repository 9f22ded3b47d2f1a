// An ordered XML tree that keeps everything libvirt keeps (element order, attribute order,
// comments, unknown elements and namespaces), read with fast-xml-parser and written back in
// virsh's layout: 2-space indent, single-quoted attributes, one element per line.

import { XMLParser, XMLValidator } from 'fast-xml-parser';

export interface XmlElement {
  type: 'element';
  name: string;
  /** In document order (object keys keep insertion order for XML names). */
  attributes: Record<string, string>;
  children: XmlNode[];
}

export interface XmlText {
  type: 'text';
  text: string;
}

export interface XmlComment {
  type: 'comment';
  text: string;
}

export type XmlNode = XmlElement | XmlText | XmlComment;

/**
 * Thrown for input that is not well-formed XML ('malformed'; line/column from XMLValidator when
 * known), that uses XML features domain XML never needs ('unsupported'), or that is well-formed but
 * beyond what a definition can be: too large, too deep, or using a reserved name ('invalid').
 */
export class XmlSyntaxError extends Error {
  constructor(
    message: string,
    readonly kind: 'malformed' | 'unsupported' | 'invalid' = 'malformed',
    readonly line?: number,
    readonly column?: number,
  ) {
    super(message);
    this.name = 'XmlSyntaxError';
  }
}

/** The shape fast-xml-parser produces with preserveOrder: one key per node, attributes under ':@'. */
type FxpNode = Record<string, unknown>;

const ATTRIBUTES_KEY = ':@';

/** libvirt's own schema nests a few levels deep (<devices><disk><source><host>…); metadata a little more. */
export const MAX_DEPTH = 64;
/** The API takes at most 1 MiB of XML; a definition read from disk or a state file gets some slack for re-indentation. */
export const MAX_XML_CHARS = 4 * 1024 * 1024;
/**
 * Names that would reach an object's prototype if a name were ever used as a property key: the
 * parser refuses them with an internal error, so they are refused here first, with the reason.
 */
const RESERVED_NAMES = new Set(['__proto__', 'constructor', 'prototype']);

// Entity handling is done here rather than by the parser: fast-xml-parser leaves numeric
// character references undecoded and decodes '&amp;' before them, which would turn '&amp;#65;'
// into 'A'. libvirt XML has no DTD, so only the five predefined entities exist.
const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  processEntities: false,
  commentPropName: '#comment',
  cdataPropName: '#cdata',
  // libvirt never writes a declaration or processing instructions; the parser also drops
  // processing-instruction data, so keeping them would not round-trip anyway.
  ignoreDeclaration: true,
  ignorePiTags: true,
  // Names like toString or valueOf are kept as written (the parser would rename them '__toString'):
  // each becomes the one key of its own node object and is only ever read back as data.
  onDangerousProperty: (name: string) => name,
  maxNestedTags: MAX_DEPTH + 1,
});

/**
 * Parses a document into its top-level nodes (comments and exactly one root element).
 * Whitespace used for indentation is dropped; text in leaf and mixed-content elements is kept.
 */
export function parseXmlTree(xml: string): XmlNode[] {
  if (xml.length > MAX_XML_CHARS) {
    throw new XmlSyntaxError(`the XML is ${xml.length} characters long; at most ${MAX_XML_CHARS} are accepted`, 'invalid');
  }
  const source = xml.replace(/^\uFEFF/, '');
  const verdict = XMLValidator.validate(source);
  if (verdict !== true) {
    const { msg, line, col } = verdict.err;
    const at = col === undefined ? `line ${line}` : `line ${line}, column ${col}`;
    throw new XmlSyntaxError(`malformed XML at ${at}: ${msg}`, 'malformed', line, col);
  }
  if (hasDoctype(source)) {
    throw new XmlSyntaxError('a <!DOCTYPE> declaration is not supported in domain XML', 'unsupported');
  }
  checkNamesAndDepth(source);
  const nodes = convertNodes(parser.parse(source) as FxpNode[], 'the document');
  const roots = nodes.filter((node) => node.type === 'element');
  if (roots.length !== 1) {
    throw new XmlSyntaxError(
      roots.length === 0 ? 'malformed XML: no root element' : `malformed XML: ${roots.length} root elements, expected one`,
    );
  }
  return nodes;
}

// Only run on a document XMLValidator accepted, so every '<' starts a comment, CDATA section,
// processing instruction or tag, and quotes in tags are balanced.
const MARKUP = /<!--[\s\S]*?-->|<!\[CDATA\[[\s\S]*?\]\]>|<\?[\s\S]*?\?>|<(\/?)([^\s/>]+)((?:[^>"']|"[^"]*"|'[^']*')*)>/g;
const ATTRIBUTE_NAME = /([^\s=]+)\s*=\s*(?:"[^"]*"|'[^']*')/g;

function lineAt(source: string, index: number): number {
  let line = 1;
  for (let i = source.indexOf('\n'); i !== -1 && i < index; i = source.indexOf('\n', i + 1)) line++;
  return line;
}

function reserved(name: string): boolean {
  return RESERVED_NAMES.has(name) || RESERVED_NAMES.has(name.slice(name.indexOf(':') + 1));
}

/** Refuses nesting deeper than MAX_DEPTH and reserved element or attribute names, with the line. */
function checkNamesAndDepth(source: string): void {
  let depth = 0;
  for (const match of source.matchAll(MARKUP)) {
    const [, closing, name, rest] = match;
    if (name === undefined) continue;
    if (closing) {
      depth--;
      continue;
    }
    const invalid = (problem: string): XmlSyntaxError => {
      const line = lineAt(source, match.index);
      return new XmlSyntaxError(`line ${line}: ${problem}`, 'invalid', line);
    };
    if (reserved(name)) throw invalid(`'${name}' is a reserved name and cannot name an element`);
    for (const [, attribute] of rest.matchAll(ATTRIBUTE_NAME)) {
      if (reserved(attribute)) throw invalid(`'${attribute}' is a reserved name and cannot name an attribute (of <${name}>)`);
    }
    if (depth + 1 > MAX_DEPTH) throw invalid(`elements are nested more than ${MAX_DEPTH} levels deep (at <${name}>)`);
    if (!rest.endsWith('/')) depth++;
  }
}

/** A DOCTYPE can only appear in the prolog, after comments and processing instructions. */
function hasDoctype(source: string): boolean {
  const prologItem = /^\s*(?:<\?[\s\S]*?\?>|<!--[\s\S]*?-->)/;
  let rest = source;
  for (let match = prologItem.exec(rest); match; match = prologItem.exec(rest)) {
    rest = rest.slice(match[0].length);
  }
  return /^\s*<!DOCTYPE/i.test(rest);
}

function convertNodes(raw: FxpNode[], where: string): XmlNode[] {
  const nodes: XmlNode[] = [];
  for (const entry of raw) {
    if ('#text' in entry) {
      appendText(nodes, decodeEntities(String(entry['#text']), `text in ${where}`));
    } else if ('#cdata' in entry) {
      appendText(nodes, innerText(entry['#cdata']));
    } else if ('#comment' in entry) {
      nodes.push({ type: 'comment', text: innerText(entry['#comment']) });
    } else {
      nodes.push(convertElement(entry));
    }
  }
  const mixed = nodes.some((node) => node.type === 'text' && node.text.trim() !== '');
  const structured = nodes.some((node) => node.type !== 'text');
  // Indentation between child elements is layout, not content; mixed content is kept verbatim.
  return structured && !mixed ? nodes.filter((node) => node.type !== 'text') : nodes;
}

function convertElement(entry: FxpNode): XmlElement {
  const name = Object.keys(entry).find((key) => key !== ATTRIBUTES_KEY);
  if (name === undefined) throw new XmlSyntaxError('malformed XML: element without a name');
  const rawAttributes = (entry[ATTRIBUTES_KEY] ?? {}) as Record<string, unknown>;
  const attributes: Record<string, string> = {};
  for (const [key, value] of Object.entries(rawAttributes)) {
    const text = String(value);
    if (text.includes('<')) {
      throw new XmlSyntaxError(`malformed XML: attribute '${key}' of <${name}> contains '<'`);
    }
    attributes[key] = decodeEntities(text, `attribute '${key}' of <${name}>`);
  }
  const children = convertNodes(entry[name] as FxpNode[], `<${name}>`);
  return { type: 'element', name, attributes, children };
}

/** Text of a '#comment' or '#cdata' node, which the parser wraps as [{ '#text': ... }]. */
function innerText(value: unknown): string {
  return (value as FxpNode[]).map((part) => String(part['#text'] ?? '')).join('');
}

/** Adjacent text and CDATA merge into one node, so a re-parse of our output gives the same tree. */
function appendText(nodes: XmlNode[], text: string): void {
  const last = nodes[nodes.length - 1];
  if (last?.type === 'text') last.text += text;
  else if (text !== '') nodes.push({ type: 'text', text });
}

const PREDEFINED_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeEntities(raw: string, where: string): string {
  if (!raw.includes('&')) return raw;
  return raw.replace(/&([^&;\s]*)(;?)/g, (reference: string, body: string, semicolon: string) => {
    const decoded = semicolon ? decodeReference(body) : undefined;
    if (decoded === undefined) {
      throw new XmlSyntaxError(`malformed XML: '${reference}' in ${where} is not a valid entity or character reference`);
    }
    return decoded;
  });
}

function decodeReference(body: string): string | undefined {
  if (Object.hasOwn(PREDEFINED_ENTITIES, body)) return PREDEFINED_ENTITIES[body];
  const numeric = /^#(?:x([0-9a-fA-F]+)|([0-9]+))$/.exec(body);
  if (!numeric) return undefined;
  const code = numeric[1] !== undefined ? parseInt(numeric[1], 16) : parseInt(numeric[2], 10);
  return isXmlChar(code) ? String.fromCodePoint(code) : undefined;
}

/** The XML 1.0 Char production. */
function isXmlChar(code: number): boolean {
  return (
    code === 0x9 ||
    code === 0xa ||
    code === 0xd ||
    (code >= 0x20 && code <= 0xd7ff) ||
    (code >= 0xe000 && code <= 0xfffd) ||
    (code >= 0x10000 && code <= 0x10ffff)
  );
}

/** Writes the nodes in virsh's layout, ending with a newline. */
export function serializeXmlTree(nodes: readonly XmlNode[]): string {
  const lines: string[] = [];
  for (const node of nodes) writeNode(node, 0, lines);
  return lines.join('\n') + '\n';
}

function writeNode(node: XmlNode, depth: number, lines: string[]): void {
  const indent = '  '.repeat(depth);
  if (node.type !== 'element') {
    lines.push(indent + inline(node));
    return;
  }
  const hasText = node.children.some((child) => child.type === 'text');
  if (node.children.length === 0 || hasText) {
    // Leaf text and mixed content are written as one run so no whitespace is added to them.
    lines.push(indent + inline(node));
    return;
  }
  lines.push(`${indent}<${node.name}${formatAttributes(node.attributes)}>`);
  for (const child of node.children) writeNode(child, depth + 1, lines);
  lines.push(`${indent}</${node.name}>`);
}

function inline(node: XmlNode): string {
  switch (node.type) {
    case 'text':
      return escapeText(node.text);
    case 'comment':
      return `<!--${node.text}-->`;
    case 'element': {
      const open = `<${node.name}${formatAttributes(node.attributes)}`;
      if (node.children.length === 0) return `${open}/>`;
      return `${open}>${node.children.map(inline).join('')}</${node.name}>`;
    }
  }
}

function formatAttributes(attributes: Record<string, string>): string {
  return Object.entries(attributes)
    .map(([key, value]) => ` ${key}='${escapeAttribute(value)}'`)
    .join('');
}

function escapeText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#13;');
}

/** Whitespace characters are written as references because parsers normalise them in attributes. */
function escapeAttribute(value: string): string {
  return escapeText(value)
    .replace(/'/g, '&apos;')
    .replace(/"/g, '&quot;')
    .replace(/\n/g, '&#10;')
    .replace(/\t/g, '&#9;');
}

// ---- Navigation and editing helpers ----

export function createElement(
  name: string,
  attributes: Record<string, string> = {},
  children: XmlNode[] = [],
): XmlElement {
  return { type: 'element', name, attributes: { ...attributes }, children };
}

/** Child elements, optionally only those with the given name, in document order. */
export function childElements(parent: XmlElement, name?: string): XmlElement[] {
  return parent.children.filter(
    (child): child is XmlElement => child.type === 'element' && (name === undefined || child.name === name),
  );
}

export function firstChild(parent: XmlElement, name: string): XmlElement | undefined {
  return childElements(parent, name)[0];
}

/** Concatenated text of an element's direct text children. */
export function textContent(element: XmlElement): string {
  return element.children.map((child) => (child.type === 'text' ? child.text : '')).join('');
}

/** Replaces an element's content with a single text node. */
export function setText(element: XmlElement, text: string): void {
  element.children = text === '' ? [] : [{ type: 'text', text }];
}

/**
 * Returns the first child named `name`, creating it when missing. A new element goes after the
 * last existing sibling that `order` lists before `name`, so the output keeps libvirt's schema
 * order; with no such sibling it becomes the first child.
 */
export function ensureChild(parent: XmlElement, name: string, order: readonly string[]): XmlElement {
  const existing = firstChild(parent, name);
  if (existing) return existing;
  const position = order.indexOf(name);
  const predecessors = new Set(position < 0 ? order : order.slice(0, position));
  let insertAt = 0;
  parent.children.forEach((child, index) => {
    if (child.type === 'element' && predecessors.has(child.name)) insertAt = index + 1;
  });
  const element = createElement(name);
  parent.children.splice(insertAt, 0, element);
  return element;
}
