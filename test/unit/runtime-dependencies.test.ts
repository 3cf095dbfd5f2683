// Every package the compiled program loads at run time is a `dependency` in package.json, so that a production
// install (`npm install --omit=dev`, what users get from the tarball) can load it. The compiled output is what
// runs: type-only imports are gone from it, and the generated code's imports (@bufbuild/protobuf) are in it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isRelative, listFiles, moduleImports, packageName, REPO_ROOT } from '../helpers/module-imports.js';

/** dist/src, beside this file's dist/test/unit. */
const DIST_SRC = fileURLToPath(new URL('../../src/', import.meta.url));

interface PackageJson {
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}
const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as PackageJson;

const isBuiltin = (spec: string): boolean =>
  spec.startsWith('node:') || builtinModules.includes(packageName(spec));

/** package name → where the compiled program loads it ("dist/src/x.js:3 (dynamic)"). */
function runtimePackages(): Map<string, string[]> {
  const files = listFiles(DIST_SRC, '.js');
  assert.ok(files.length > 50, `only ${files.length} compiled modules under ${DIST_SRC}: build first`);
  const used = new Map<string, string[]>();
  for (const file of files) {
    for (const imp of moduleImports(file, readFileSync(join(DIST_SRC, file), 'utf8'))) {
      if (imp.kind === 'type' || isRelative(imp.specifier) || isBuiltin(imp.specifier)) continue;
      const name = packageName(imp.specifier);
      const where = `dist/src/${file}:${imp.line}${imp.kind === 'static' ? '' : ` (${imp.kind})`}`;
      used.set(name, [...(used.get(name) ?? []), where]);
    }
  }
  return used;
}

test('every package the compiled program loads is a dependency, not a devDependency', () => {
  const used = runtimePackages();
  assert.ok(used.has('@grpc/grpc-js') && used.has('@bufbuild/protobuf'), 'the scan sees the gRPC code');
  assert.ok(used.has('opendal'), 'the scan sees packages imported on demand (opendal)');
  assert.ok(used.has('@node-rs/crc32'), 'the scan sees packages required on demand (@node-rs/crc32)');
  const missing = [...used]
    .filter(([name]) => pkg.dependencies?.[name] === undefined)
    .map(([name, where]) => {
      const dev = pkg.devDependencies?.[name] !== undefined ? ' (a devDependency)' : '';
      return `${name}${dev}: ${where.slice(0, 3).join(', ')}${where.length > 3 ? ', …' : ''}`;
    });
  assert.deepEqual(missing, [], `loaded at run time but not in "dependencies":\n  ${missing.join('\n  ')}`);
});

test('every dependency is loaded by the compiled program (else it belongs in devDependencies)', () => {
  const used = runtimePackages();
  const unused = Object.keys(pkg.dependencies ?? {}).filter((name) => !used.has(name));
  assert.deepEqual(unused, [], `in "dependencies" but never loaded by dist/src:\n  ${unused.join('\n  ')}`);
});
