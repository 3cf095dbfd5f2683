#!/usr/bin/env node
// dfget: download a URL through the local dfdaemon (dragonfly-client/src/bin/dfget/main.rs). dfdaemon does
// the work; dfget asks over the unix socket, shows progress and, in transfer mode, writes the bytes itself.
// This file only parses the command line: the download (gRPC, the generated protobuf code) is loaded when there is
// one, so `dfget --version` and `--help` cost little more than starting Node.

import { Command, Option } from 'commander';
import type { DfgetOptions } from './dfget-download.js';
import { addStorageOptions } from './storage-options.js';
import { packageVersion } from './version.js';

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export function dfgetCommand(): Command {
  const command = new Command('dfget')
    .description('Download a file through dfdaemon (P2P, with back-to-source).')
    .argument('<url>', 'URL of the file to download')
    .requiredOption('-O, --output <path>', 'where to write the file')
    .addOption(
      new Option('--transfer-from-dfdaemon', 'receive the bytes over the socket instead of a hard link/copy')
        .env('DFGET_TRANSFER_FROM_DFDAEMON')
        .default(false),
    )
    .option('--overwrite', 'replace the output file if it exists', false)
    .option('--force-hard-link', 'fail unless the output can be hard-linked to the stored content', false)
    .option(
      '--content-for-calculating-task-id <str>',
      'compute the task id from this string instead of the URL',
    )
    .option('--timeout <duration>', 'give up after this long (humantime, e.g. 30m)', '2h')
    .option('--digest <alg:hex>', 'verify the file: crc32:<decimal>, sha256:<hex> or sha512:<hex>')
    .option('-p, --priority <n>', 'task priority, 0 to 6', '6')
    .option('--piece-length <size>', 'piece length, at least 4MiB (e.g. 16MiB)')
    .option('--application <name>', 'caller application, part of the task id', '')
    .option('--tag <tag>', 'task tag, part of the task id', '')
    .option('-H, --header <header>', "request header 'Key: Value' for the source (repeatable)", collect, [])
    .option(
      '--filtered-query-param <param>',
      'query parameter left out of the task id (repeatable; default: the built-in signing parameters)',
      collect,
    )
    .option('--disable-back-to-source', 'never fetch from the source', false)
    .addOption(
      new Option(
        '--scheduling-policy <policy>',
        'auto: a file of one piece (4 MiB) or less comes straight from the source; always: through the scheduler ' +
          'anyway, so other peers can take it from this one',
      )
        .choices(['auto', 'always'])
        .env('DFGET_SCHEDULING_POLICY')
        .default('auto'),
    )
    .option('-r, --recursive', 'download the directory the URL names (appends / to its path)', false)
    .option(
      '-I, --include-files <pattern>',
      'in a directory download, only this path or glob relative to the URL (repeatable)',
      collect,
      [],
    )
    .addOption(
      new Option('--max-files <n>', 'refuse a directory download of more files than this')
        .env('DFGET_MAX_FILES')
        .default('100'),
    )
    .addOption(
      new Option('--max-concurrent-requests <n>', 'files of a directory downloaded at once')
        .env('DFGET_MAX_CONCURRENT_REQUESTS')
        .default('5'),
    );
  return addStorageOptions(command, 'DFGET')
    .addOption(
      new Option('--hf-revision <revision>', 'Hugging Face repository revision (branch, tag or commit)')
        .env('DFGET_HF_REVISION')
        .default('main'),
    )
    .addOption(new Option('--hf-token <token>', 'Hugging Face access token').env('DFGET_HF_TOKEN'))
    .addOption(
      new Option(
        '--hf-base-url <url>',
        'Hugging Face endpoint or mirror (default https://huggingface.co)',
      ).env('DFGET_HF_BASE_URL'),
    )
    .addOption(
      new Option('--ms-revision <revision>', 'ModelScope repository revision (branch, tag or commit)')
        .env('DFGET_MS_REVISION')
        .default('master'),
    )
    .addOption(new Option('--ms-token <token>', 'ModelScope access token').env('DFGET_MS_TOKEN'))
    .addOption(
      new Option('--ms-base-url <url>', 'ModelScope endpoint or mirror (default https://modelscope.cn)').env(
        'DFGET_MS_BASE_URL',
      ),
    )
    .addOption(
      new Option('--csg-revision <revision>', 'OpenCSG repository revision (branch, tag or commit)')
        .env('DFGET_CSG_REVISION')
        .default('main'),
    )
    .addOption(new Option('--csg-token <token>', 'OpenCSG access token').env('DFGET_CSG_TOKEN'))
    .addOption(
      new Option(
        '--csg-base-url <url>',
        'OpenCSG endpoint or mirror (default https://hub.opencsg.com/csg/)',
      ).env('DFGET_CSG_BASE_URL'),
    )
    .addOption(
      new Option('--hdfs-delegation-token <token>', 'WebHDFS delegation token (hdfs)').env(
        'DFGET_HDFS_DELEGATION_TOKEN',
      ),
    )
    .option('--no-progress', 'hide the progress bar')
    .option('-e, --endpoint <socket>', 'dfdaemon download socket')
    .option('-l, --log-level <level>', 'log level', 'info')
    .option('--console', 'log to the console', false)
    .version(`dfget ${packageVersion()}`, '-V, --version')
    .action(async (url: string, o: DfgetOptions) => (await import('./dfget-download.js')).runDfget(url, o));
}

await dfgetCommand().parseAsync(process.argv);
