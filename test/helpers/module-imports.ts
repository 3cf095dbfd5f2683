// Reads the module specifiers a source file names, with the TypeScript parser (so comments, strings and template
// literals never count as imports). Shared by the import-graph test (src/**/*.ts) and the run-time dependency test
// (dist/src/**/*.js).

import { readdirSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** The repository root, from this file's place in dist/test/helpers/ (works in a fresh clone after a build). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

export type ImportKind =
  /** `import … from`, `import '…'`, `export … from`, `import x = require(…)`. */
  | 'static'
  /** `import type …`, `export type … from`, `typeof import('…')` in a type: gone from the compiled output. */
  | 'type'
  /** `import('…')` or `require('…')` (a `createRequire` function named require) with a literal specifier. */
  | 'dynamic'
  /** A module loaded by name at run time: `pino.transport({ target: '…' })`. */
  | 'by-name';

export interface ModuleImport {
  specifier: string;
  kind: ImportKind;
  /** 1-based. */
  line: number;
}

/** Every file under dir (recursively) whose name ends with ext, as paths relative to dir with '/' separators. */
export function listFiles(dir: string, ext: string, skipDirs: readonly string[] = []): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const rel = relative(dir, p).split(sep).join('/');
      if (e.isDirectory()) {
        if (!skipDirs.includes(rel)) walk(p);
      } else if (e.name.endsWith(ext) && !e.name.endsWith('.d.ts')) {
        out.push(rel);
      }
    }
  };
  walk(dir);
  return out.sort();
}

function isTypeOnlyImport(node: ts.ImportDeclaration): boolean {
  const clause = node.importClause;
  if (!clause) return false; // `import './x.js'` runs the module
  if (clause.isTypeOnly) return true;
  // `import { type A, type B } from …` is erased too (verbatimModuleSyntax aside); `import {} from` is not.
  const named = clause.namedBindings;
  return (
    clause.name === undefined &&
    named !== undefined &&
    ts.isNamedImports(named) &&
    named.elements.length > 0 &&
    named.elements.every((e) => e.isTypeOnly)
  );
}

function isTypeOnlyExport(node: ts.ExportDeclaration): boolean {
  if (node.isTypeOnly) return true;
  const clause = node.exportClause;
  return (
    clause !== undefined &&
    ts.isNamedExports(clause) &&
    clause.elements.length > 0 &&
    clause.elements.every((e) => e.isTypeOnly)
  );
}

/** The name of a call's callee when it is `transport(…)` or `x.transport(…)`. */
function calleeName(call: ts.CallExpression): string | undefined {
  const e = call.expression;
  if (ts.isIdentifier(e)) return e.text;
  if (ts.isPropertyAccessExpression(e)) return e.name.text;
  return undefined;
}

/** String values of `target` properties anywhere inside a node (pino: `{ target }` or `{ targets: [{ target }] }`). */
function transportTargets(node: ts.Node, out: Array<{ text: string; node: ts.Node }>): void {
  if (
    ts.isPropertyAssignment(node) &&
    (ts.isIdentifier(node.name) || ts.isStringLiteral(node.name)) &&
    node.name.text === 'target' &&
    ts.isStringLiteralLike(node.initializer)
  ) {
    out.push({ text: node.initializer.text, node: node.initializer });
  }
  ts.forEachChild(node, (c) => transportTargets(c, out));
}

/** The module specifiers that fileName (TypeScript or JavaScript source text) names. */
export function moduleImports(fileName: string, text: string): ModuleImport[] {
  const kind = fileName.endsWith('.ts') ? ts.ScriptKind.TS : ts.ScriptKind.JS;
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, kind);
  const out: ModuleImport[] = [];
  const add = (specifier: ts.Node, k: ImportKind): void => {
    if (!ts.isStringLiteralLike(specifier)) return;
    const line = sf.getLineAndCharacterOfPosition(specifier.getStart(sf)).line + 1;
    out.push({ specifier: specifier.text, kind: k, line });
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      add(node.moduleSpecifier, isTypeOnlyImport(node) ? 'type' : 'static');
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier) {
      add(node.moduleSpecifier, isTypeOnlyExport(node) ? 'type' : 'static');
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression, node.isTypeOnly ? 'type' : 'static');
    } else if (ts.isImportTypeNode(node)) {
      const arg = node.argument;
      if (ts.isLiteralTypeNode(arg)) add(arg.literal, 'type');
    } else if (ts.isCallExpression(node)) {
      if (node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0]) {
        add(node.arguments[0], 'dynamic');
      } else if (calleeName(node) === 'require' && node.arguments[0]) {
        add(node.arguments[0], 'dynamic');
      } else if (calleeName(node) === 'transport') {
        const targets: Array<{ text: string; node: ts.Node }> = [];
        for (const a of node.arguments) transportTargets(a, targets);
        for (const t of targets) add(t.node, 'by-name');
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** A relative or absolute specifier, as opposed to a package name ('pino', '@grpc/grpc-js/build/x', 'node:fs'). */
export function isRelative(specifier: string): boolean {
  return specifier.startsWith('./') || specifier.startsWith('../') || specifier.startsWith('/');
}

/** The package a bare specifier loads: '@scope/name/sub' → '@scope/name', 'name/sub' → 'name'. */
export function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}
