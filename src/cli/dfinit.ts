#!/usr/bin/env node
// dfinit: points one container runtime at dfdaemon's proxy (dragonfly-client-init). Reads dfinit.yaml, works out
// what the runtime's files should hold, and writes only what differs: a second run changes nothing and says so.
// `--dry-run` prints the changes as a unified diff and writes nothing.

import { Command } from 'commander';
import { DEFAULT_DFINIT_CONFIG_PATH, loadDfinitConfig } from '../config/dfinit.js';
import { unifiedDiff } from '../init/diff.js';
import { DfError } from '../core/errors.js';
import { applyChange, statusOf, writeProblems } from '../init/files.js';
import { planInit } from '../init/runtime.js';
import { describeError } from './common.js';
import { packageVersion } from './version.js';
import { checkLogLevel, type Logger } from './logging.js';

interface DfinitArgs {
  config: string;
  dryRun: boolean;
  logLevel: string;
  console: boolean;
}

const out = (line: string) => process.stdout.write(line + '\n');

async function main(a: DfinitArgs): Promise<void> {
  const level = checkLogLevel(a.logLevel);
  let log: Logger | undefined;
  if (a.console) {
    const { createLogger } = await import('./logging.js');
    log = createLogger({ name: 'dfinit', level, console: true });
  }
  const { config, warnings } = loadDfinitConfig(a.config);
  log?.info({ config: a.config }, 'loaded config');
  for (const w of warnings) {
    log?.warn({}, w);
    process.stderr.write(`dfinit: warning: ${w}\n`);
  }
  const plan = planInit(config);
  if (!plan) {
    out(`containerRuntime is not set in ${a.config}: nothing to do`);
    return;
  }
  log?.debug({ runtime: plan.runtime, files: plan.changes.map((c) => c.path) }, 'planned');
  const changed = plan.changes.filter((c) => statusOf(c) !== 'unchanged');
  if (changed.length === 0) {
    out(
      `nothing to change: ${plan.runtime} already pulls through ${config.proxy.addr} ` +
        `(${plan.changes.length} file${plan.changes.length === 1 ? '' : 's'} checked)`,
    );
    return;
  }
  const notes = plan.notes.map((n) => `note: ${n}`);
  const restart = plan.restart && changed.some((c) => plan.restart!.restartFor.includes(c.path));

  // Every target is checked before any is written, so a run that cannot finish changes nothing.
  const problems = writeProblems(changed);
  if (a.dryRun) {
    for (const c of changed) process.stdout.write(unifiedDiff(c.before, c.after, c.path, c.path));
    for (const n of notes) out(n);
    for (const p of problems) out(`note: a real run would stop here, writing nothing: ${p}`);
    out(`dry run: ${changed.length} file${changed.length === 1 ? '' : 's'} would change; nothing written`);
    return;
  }
  if (problems.length > 0) {
    const denied = problems.some((p) => p.includes('permission denied'));
    throw new DfError(denied ? 'PERMISSION_DENIED' : 'IO', `${problems.join('; ')}; nothing was written`);
  }
  for (const c of plan.changes) {
    const r = applyChange(c);
    log?.info({ path: r.path, status: r.status, backup: r.backup }, 'file');
    if (r.status === 'updated') out(`updated ${r.path} (original kept as ${r.backup})`);
    else if (r.status === 'created') out(`created ${r.path}`);
    else out(`unchanged ${r.path}`);
  }
  for (const n of notes) out(n);
  if (restart) out(plan.restart!.hint);
  log?.flush();
}

export function dfinitCommand(): Command {
  return new Command('dfinit')
    .description(
      "Initialize the container runtime for dfdaemon: point containerd, docker, CRI-O or podman at dfdaemon's " +
        'proxy, as dfinit.yaml says.',
    )
    .option('-c, --config <path>', 'dfinit.yaml', DEFAULT_DFINIT_CONFIG_PATH)
    .option('--dry-run', 'print what would change as a unified diff; write nothing', false)
    .option('-l, --log-level <level>', 'log level [trace, debug, info, warn, error]', 'info')
    .option('--console', 'log to the console (stderr)', false)
    .version(`dfinit ${packageVersion()}`, '-V, --version')
    .action(async (a: DfinitArgs) => {
      try {
        await main(a);
      } catch (e) {
        process.stderr.write(`Error: ${describeError(e)}\n`);
        process.exitCode = 1;
      }
    });
}

await dfinitCommand().parseAsync(process.argv);
