// An option table of argv.ts (storage-options.ts's, shared with dfget) added to a commander command: the
// commands with subcommands (dfstore) keep commander, and the flags are written once.

import { Option, type Command } from 'commander';
import type { OptionSpec } from './argv.js';

export function addOptionSpecs(command: Command, specs: readonly OptionSpec[]): Command {
  for (const spec of specs) {
    const option = new Option(spec.flags, spec.description);
    if (spec.env) option.env(spec.env);
    if (spec.choices) option.choices(spec.choices);
    if (spec.required) option.makeOptionMandatory();
    if (spec.repeatable) option.argParser((value: string, previous: string[] = []) => [...previous, value]);
    if (spec.default !== undefined) option.default(spec.default);
    command.addOption(option);
  }
  return command;
}
