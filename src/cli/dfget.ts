#!/usr/bin/env node
// dfget: download a URL through the local dfdaemon (dragonfly-client/src/bin/dfget/main.rs). dfdaemon does
// the work; dfget asks over the unix socket, shows progress and, in transfer mode, writes the bytes itself.
// This file only parses the command line (argv.ts, from the table below) and connects to dfdaemon's socket; the
// download is loaded when there is one, so `dfget --version` and `--help` cost little more than starting Node.

import { parseCommandLine, type CommandSpec, type OptionSpec } from './argv.js';
import type { DfgetOptions } from './dfget-download.js';
import { storageOptionSpecs } from './storage-options.js';
import { packageVersion } from './version.js';

/** dfget's options, with upstream's names, defaults and environment variables (docs/cli.md). */
export const DFGET_OPTIONS: OptionSpec[] = [
  { flags: '-O, --output <path>', description: 'where to write the file', required: true },
  {
    flags: '--transfer-from-dfdaemon',
    description: 'receive the bytes over the socket instead of a hard link/copy',
    default: false,
    env: 'DFGET_TRANSFER_FROM_DFDAEMON',
  },
  { flags: '--overwrite', description: 'replace the output file if it exists', default: false },
  {
    flags: '--force-hard-link',
    description: 'fail unless the output can be hard-linked to the stored content',
    default: false,
  },
  {
    flags: '--content-for-calculating-task-id <str>',
    description: 'compute the task id from this string instead of the URL',
  },
  {
    flags: '--timeout <duration>',
    description: 'give up after this long (humantime, e.g. 30m)',
    default: '2h',
  },
  {
    flags: '--digest <alg:hex>',
    description: 'verify the file: crc32:<decimal>, sha256:<hex> or sha512:<hex>',
  },
  { flags: '-p, --priority <n>', description: 'task priority, 0 to 6', default: '6' },
  { flags: '--piece-length <size>', description: 'piece length, at least 4MiB (e.g. 16MiB)' },
  { flags: '--application <name>', description: 'caller application, part of the task id', default: '' },
  { flags: '--tag <tag>', description: 'task tag, part of the task id', default: '' },
  {
    flags: '-H, --header <header>',
    description: "request header 'Key: Value' for the source (repeatable)",
    default: [],
    repeatable: true,
  },
  {
    flags: '--filtered-query-param <param>',
    description:
      'query parameter left out of the task id (repeatable; default: the built-in signing parameters)',
    repeatable: true,
  },
  { flags: '--disable-back-to-source', description: 'never fetch from the source', default: false },
  {
    flags: '--scheduling-policy <policy>',
    description:
      'auto: a file of one piece (4 MiB) or less comes straight from the source; always: through the scheduler ' +
      'anyway, so other peers can take it from this one',
    default: 'auto',
    env: 'DFGET_SCHEDULING_POLICY',
    choices: ['auto', 'always'],
  },
  {
    flags: '-r, --recursive',
    description: 'download the directory the URL names (appends / to its path)',
    default: false,
  },
  {
    flags: '-I, --include-files <pattern>',
    description: 'in a directory download, only this path or glob relative to the URL (repeatable)',
    default: [],
    repeatable: true,
  },
  {
    flags: '--max-files <n>',
    description: 'refuse a directory download of more files than this',
    default: '100',
    env: 'DFGET_MAX_FILES',
  },
  {
    flags: '--max-concurrent-requests <n>',
    description: 'files of a directory downloaded at once',
    default: '5',
    env: 'DFGET_MAX_CONCURRENT_REQUESTS',
  },
  ...storageOptionSpecs('DFGET'),
  {
    flags: '--hf-revision <revision>',
    description: 'Hugging Face repository revision (branch, tag or commit)',
    default: 'main',
    env: 'DFGET_HF_REVISION',
  },
  { flags: '--hf-token <token>', description: 'Hugging Face access token', env: 'DFGET_HF_TOKEN' },
  {
    flags: '--hf-base-url <url>',
    description: 'Hugging Face endpoint or mirror (default https://huggingface.co)',
    env: 'DFGET_HF_BASE_URL',
  },
  {
    flags: '--ms-revision <revision>',
    description: 'ModelScope repository revision (branch, tag or commit)',
    default: 'master',
    env: 'DFGET_MS_REVISION',
  },
  { flags: '--ms-token <token>', description: 'ModelScope access token', env: 'DFGET_MS_TOKEN' },
  {
    flags: '--ms-base-url <url>',
    description: 'ModelScope endpoint or mirror (default https://modelscope.cn)',
    env: 'DFGET_MS_BASE_URL',
  },
  {
    flags: '--csg-revision <revision>',
    description: 'OpenCSG repository revision (branch, tag or commit)',
    default: 'main',
    env: 'DFGET_CSG_REVISION',
  },
  { flags: '--csg-token <token>', description: 'OpenCSG access token', env: 'DFGET_CSG_TOKEN' },
  {
    flags: '--csg-base-url <url>',
    description: 'OpenCSG endpoint or mirror (default https://hub.opencsg.com/csg/)',
    env: 'DFGET_CSG_BASE_URL',
  },
  {
    flags: '--hdfs-delegation-token <token>',
    description: 'WebHDFS delegation token (hdfs)',
    env: 'DFGET_HDFS_DELEGATION_TOKEN',
  },
  { flags: '--no-progress', description: 'hide the progress bar' },
  { flags: '-e, --endpoint <socket>', description: 'dfdaemon download socket' },
  { flags: '-l, --log-level <level>', description: 'log level', default: 'info' },
  { flags: '--console', description: 'log to the console', default: false },
];

export function dfgetCommand(): CommandSpec {
  return {
    name: 'dfget',
    description: 'Download a file through dfdaemon (P2P, with back-to-source).',
    argument: { name: 'url', description: 'URL of the file to download' },
    options: DFGET_OPTIONS,
    version: `dfget ${packageVersion()}`,
  };
}

const parsed = parseCommandLine(dfgetCommand(), process.argv.slice(2));
if (parsed.kind === 'exit') {
  if (parsed.stdout) process.stdout.write(parsed.stdout);
  if (parsed.stderr) process.stderr.write(parsed.stderr);
  process.exitCode = parsed.code;
} else {
  const o = parsed.options as unknown as DfgetOptions;
  // Connect before loading the download's modules: dfdaemon accepts and starts identifying the caller
  // meanwhile (docs/benchmarks.md, "Start-up").
  const { defaultSocketPath } = await import('./common.js');
  const { PendingConnection } = await import('../grpc/pending-connection.js');
  const pending = new PendingConnection(o.endpoint ?? (await defaultSocketPath()));
  await (await import('./dfget-download.js')).runDfget(parsed.argument, o, pending);
}
