// The architecture's import rules (README, "Architecture"), checked on every source file with the
// TypeScript parser: which folder may import which, and no import cycles. A new import that breaks
// a rule fails `npm test`, naming the file, the import and the rule.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import ts from 'typescript';

const ROOT = path.resolve(import.meta.dirname, '..');
const SOURCE_DIRS = ['main', 'shared', 'renderer/src', 'e2e', 'build'];

interface Edge {
  from: string;
  /** A repository path for relative imports, else the package name. */
  to: string;
  relative: boolean;
  typeOnly: boolean;
}

function sourceFiles(): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
      const rel = path.posix.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== 'node_modules' && e.name !== 'dist') walk(rel);
      } else if (/\.(ts|vue|mjs)$/.test(e.name) && !e.name.endsWith('.d.ts')) {
        out.push(rel);
      }
    }
  };
  for (const d of SOURCE_DIRS) if (fs.existsSync(path.join(ROOT, d))) walk(d);
  return out;
}

/** The script of a file: a .vue file's <script> blocks, else the whole text. */
function scriptOf(file: string): string {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  if (!file.endsWith('.vue')) return text;
  return [...text.matchAll(/<script\b[^>]*>([\s\S]*?)<\/script>/g)].map((m) => m[1]).join('\n');
}

/** Resolves a relative specifier to a repository file (NodeNext writes .js for .ts sources). */
function resolveRelative(from: string, spec: string): string {
  const base = path.posix.normalize(path.posix.join(path.posix.dirname(from), spec));
  const candidates = [base, base.replace(/\.js$/, '.ts'), base.replace(/\.mjs$/, '.mts'), `${base}.ts`, `${base}/index.ts`];
  return candidates.find((c) => fs.existsSync(path.join(ROOT, c)) && fs.statSync(path.join(ROOT, c)).isFile()) ?? base;
}

function importsOf(file: string): Edge[] {
  const source = ts.createSourceFile(file, scriptOf(file), ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const edges: Edge[] = [];
  const add = (spec: string, typeOnly: boolean): void => {
    const relative = spec.startsWith('.');
    edges.push({ from: file, to: relative ? resolveRelative(file, spec) : spec, relative, typeOnly });
  };
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const typeOnly = ts.isImportDeclaration(node)
        ? Boolean(node.importClause?.isTypeOnly || (node.importClause && !node.importClause.name && node.importClause.namedBindings && ts.isNamedImports(node.importClause.namedBindings) && node.importClause.namedBindings.elements.every((e) => e.isTypeOnly)))
        : node.isTypeOnly;
      add(node.moduleSpecifier.text, typeOnly);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0])) {
      add(node.arguments[0].text, false);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return edges;
}

const isTest = (f: string): boolean => /\.test\.ts$/.test(f) || f.startsWith('main/testing/') || f.startsWith('e2e/');
const under = (f: string, dir: string): boolean => f === dir || f.startsWith(`${dir}/`);

/** Each rule: the files it governs, and why an import of theirs is refused (undefined: allowed). */
const RULES: { name: string; applies: (from: string) => boolean; refuse: (e: Edge) => string | undefined }[] = [
  {
    name: 'renderer imports only renderer and shared code',
    applies: (f) => under(f, 'renderer/src'),
    refuse: (e) => (e.relative && !under(e.to, 'renderer/src') && !under(e.to, 'shared') ? 'the renderer reaches the host only through the API contract in shared/' : e.to === 'electron' ? 'the renderer never imports Electron (the preload bridge does)' : undefined),
  },
  {
    name: 'shared imports nothing of main or renderer',
    applies: (f) => under(f, 'shared'),
    refuse: (e) => (e.relative && !under(e.to, 'shared') ? 'shared/ is used by every process: it must not depend on one of them' : e.to === 'electron' ? 'shared/ runs outside Electron too' : undefined),
  },
  {
    name: 'host never imports Electron, the CLI or runner internals',
    applies: (f) => under(f, 'main/host') && !isTest(f),
    refuse: (e) => {
      if (e.to === 'electron' || e.to.startsWith('electron/')) return 'the host runs outside Electron too (the web shell, domusd)';
      if (e.relative && under(e.to, 'main/runner') && e.to !== 'main/runner/protocol.ts') return 'the host talks to runners only through main/runner/protocol.ts';
      if (e.relative && under(e.to, 'main/netswitch') && e.to !== 'main/netswitch/protocol.ts') return 'the host talks to network switches only through main/netswitch/protocol.ts';
      if (e.relative && (under(e.to, 'main/cli') || under(e.to, 'main/electron'))) return 'the host is below its clients';
      return undefined;
    },
  },
  {
    name: 'runner imports neither host nor Electron',
    applies: (f) => under(f, 'main/runner') && !isTest(f),
    refuse: (e) => (e.relative && (under(e.to, 'main/host') || under(e.to, 'main/cli') || under(e.to, 'main/electron')) ? 'a runner outlives hosts: it depends only on main/common and shared' : e.to === 'electron' ? 'runners are plain Node processes' : undefined),
  },
  {
    name: 'network switch imports only common and shared code',
    applies: (f) => under(f, 'main/netswitch') && !isTest(f),
    refuse: (e) => (e.relative && !under(e.to, 'main/netswitch') && !under(e.to, 'main/common') && !under(e.to, 'shared') ? 'a switch outlives hosts: it depends only on main/common and shared' : e.to === 'electron' ? 'switches are plain Node processes' : undefined),
  },
  {
    name: 'CLI imports shared, main/common and its own code, not host internals',
    applies: (f) => under(f, 'main/cli') && !isTest(f),
    refuse: (e) => (e.relative && !under(e.to, 'main/cli') && !under(e.to, 'main/common') && !under(e.to, 'shared') ? 'the CLI is a client: it talks to the host through shared/client.ts' : undefined),
  },
  {
    name: 'common code imports only common and shared code',
    applies: (f) => under(f, 'main/common') && !isTest(f),
    refuse: (e) => (e.relative && !under(e.to, 'main/common') && !under(e.to, 'shared') ? 'main/common is below every process' : e.to === 'electron' ? 'main/common runs outside Electron' : undefined),
  },
  {
    name: 'only main/electron imports Electron',
    applies: (f) => !under(f, 'main/electron') && !isTest(f) && !under(f, 'build'),
    refuse: (e) => (e.to === 'electron' || e.to.startsWith('electron/') ? 'Electron-only code stays in main/electron (the web shell has no Electron)' : undefined),
  },
  {
    name: 'runtime code never imports test support',
    applies: (f) => !isTest(f) && !under(f, 'build'),
    refuse: (e) => (e.relative && (under(e.to, 'main/testing') || /\.test\.ts$/.test(e.to)) ? 'test support lives in main/testing and is for tests only' : undefined),
  },
];

/** Import cycles among source files (Tarjan's strongly connected components), type-only imports included. */
function cycles(edges: Edge[]): string[][] {
  const graph = new Map<string, string[]>();
  for (const e of edges) if (e.relative) graph.set(e.from, [...(graph.get(e.from) ?? []), e.to]);
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const strong = (v: string): void => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        strong(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) strong(v);
  return found;
}

describe('import rules', () => {
  const files = sourceFiles();
  const edges = files.flatMap(importsOf);

  test('the checker sees the whole tree', () => {
    assert.ok(files.length > 200, `only ${files.length} source files found`);
    assert.ok(edges.some((e) => e.from === 'main/host/host.ts' && e.to === 'main/host/registry.ts'), 'host.ts → registry.ts was not seen');
    assert.ok(edges.some((e) => e.from.endsWith('.vue') && e.relative), 'imports of .vue files were not seen');
  });

  for (const rule of RULES) {
    test(rule.name, () => {
      const broken = edges.filter((e) => rule.applies(e.from)).flatMap((e) => {
        const why = rule.refuse(e);
        return why ? [`${e.from} imports ${e.to}: ${why}`] : [];
      });
      assert.deepEqual(broken, []);
    });
  }

  test('no import cycles', () => {
    assert.deepEqual(cycles(edges), []);
  });

  test('the rules catch what they are meant to', () => {
    const probe = (from: string, to: string): string[] =>
      RULES.filter((r) => r.applies(from)).flatMap((r) => r.refuse({ from, to, relative: to.includes('/'), typeOnly: false }) ?? []);
    assert.notDeepEqual(probe('renderer/src/stores/domains.ts', 'main/host/host.ts'), []);
    assert.notDeepEqual(probe('shared/api.ts', 'main/common/fsutil.ts'), []);
    assert.notDeepEqual(probe('main/host/host.ts', 'main/runner/emulator.ts'), []);
    assert.deepEqual(probe('main/host/host.ts', 'main/runner/protocol.ts'), []);
    assert.notDeepEqual(probe('main/cli/connect.ts', 'main/host/daemon.ts'), []);
    assert.notDeepEqual(probe('main/host/lifecycle.ts', 'electron'), []);
    assert.notDeepEqual(probe('main/host/lifecycle.ts', 'main/testing/harness.ts'), []);
    assert.deepEqual(cycles([
      { from: 'a.ts', to: 'b.ts', relative: true, typeOnly: false },
      { from: 'b.ts', to: 'a.ts', relative: true, typeOnly: true },
    ]), [['a.ts', 'b.ts']]);
  });
});
