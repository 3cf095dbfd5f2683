// The version line of every binary, read from package.json: a module of its own so that `--version` loads nothing
// else (no gRPC, no generated protobuf code).

import { readFileSync } from 'node:fs';

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}
