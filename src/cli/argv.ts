// A command line parser for a one-command binary, driven by a table of options, with commander's conventions
// (`-O x`, `-Ox`, `--output x`, `--output=x`, `--no-progress`, `[optional]` values, repeatable options, values
// from the environment, choices, `--`, `-h/--help`, `-V/--version`) and its error lines. dfget uses it instead of
// commander, whose loading cost more start-up time than dfget's whole download of a cached file
// (docs/benchmarks.md, "Start-up"). Commands with subcommands keep commander.

export interface OptionSpec {
  /** As commander writes them: `-O, --output <path>`, `--overwrite`, `--no-progress`, `--flag [value]`. */
  flags: string;
  description: string;
  /** The value when neither the command line nor the environment gives one. */
  default?: string | boolean | string[];
  /** An environment variable that gives the value when the command line does not. */
  env?: string;
  choices?: readonly string[];
  /** Each occurrence adds its value to a list. */
  repeatable?: boolean;
  required?: boolean;
}

export interface CommandSpec {
  name: string;
  description: string;
  /** The one positional argument: its name and description. */
  argument: { name: string; description: string };
  options: OptionSpec[];
  version: string;
}

/** What the command line asked for: run the command, or print this text and exit with this code. */
export type ParseResult =
  | { kind: 'run'; argument: string; options: Record<string, unknown> }
  | { kind: 'exit'; code: number; stdout?: string; stderr?: string };

interface ParsedFlags {
  spec: OptionSpec;
  short?: string;
  long: string;
  key: string;
  value: 'none' | 'required' | 'optional';
  negate: boolean;
}

function camelCase(name: string): string {
  return name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function parseFlags(spec: OptionSpec): ParsedFlags {
  const m = /^(?:(-\w), )?--([\w-]+)(?: (<[^>]+>|\[[^\]]+\]))?$/.exec(spec.flags);
  if (!m) throw new Error(`bad option flags: ${spec.flags}`);
  const negate = m[2]!.startsWith('no-');
  return {
    spec,
    short: m[1],
    long: `--${m[2]}`,
    key: camelCase(negate ? m[2]!.slice(3) : m[2]!),
    value: m[3] === undefined ? 'none' : m[3].startsWith('<') ? 'required' : 'optional',
    negate,
  };
}

const HELP: OptionSpec = { flags: '-h, --help', description: 'display help for command' };
const VERSION: OptionSpec = { flags: '-V, --version', description: 'output the version number' };

function fail(message: string): ParseResult {
  return { kind: 'exit', code: 1, stderr: `error: ${message}\n` };
}

/** Parses `args` (process.argv without node and the script) against `command`. */
export function parseCommandLine(
  command: CommandSpec,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): ParseResult {
  const flags = command.options.map(parseFlags);
  const byName = new Map<string, ParsedFlags>();
  for (const f of flags) {
    byName.set(f.long, f);
    if (f.short) byName.set(f.short, f);
  }
  const values: Record<string, unknown> = {};
  const given = new Set<string>();
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (arg === '-h' || arg === '--help') return { kind: 'exit', code: 0, stdout: helpText(command) };
    if (arg === '-V' || arg === '--version') return { kind: 'exit', code: 0, stdout: `${command.version}\n` };
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      continue;
    }
    // --name=value, -Xvalue, or the name alone.
    let name = arg;
    let inline: string | undefined;
    if (arg.startsWith('--') && arg.includes('=')) {
      name = arg.slice(0, arg.indexOf('='));
      inline = arg.slice(arg.indexOf('=') + 1);
    } else if (!arg.startsWith('--') && arg.length > 2) {
      name = arg.slice(0, 2);
      inline = arg.slice(2);
    }
    const f = byName.get(name);
    if (!f) return fail(`unknown option '${arg}'`);
    let value: string | boolean;
    if (f.value === 'none') {
      if (inline !== undefined) return fail(`option '${f.spec.flags}' does not take an argument`);
      value = !f.negate;
    } else if (inline !== undefined) value = inline;
    else if (f.value === 'required') {
      const next = args[i + 1];
      if (next === undefined) return fail(`option '${f.spec.flags}' argument missing`);
      value = next;
      i++;
    } else {
      const next = args[i + 1];
      if (next !== undefined && !next.startsWith('-')) {
        value = next;
        i++;
      } else value = true;
    }
    const problem = setValue(f, values, value);
    if (problem) return fail(problem);
    given.add(f.key);
  }
  for (const f of flags) {
    if (given.has(f.key)) continue;
    const fromEnv = f.spec.env === undefined ? undefined : env[f.spec.env];
    if (fromEnv !== undefined) {
      // As commander: an option without a value is switched on by the variable being set at all.
      const problem = setValue(f, values, f.value === 'none' ? !f.negate : fromEnv);
      if (problem) return fail(problem);
    } else if (!(f.key in values)) {
      const d = f.spec.default ?? (f.negate ? true : undefined);
      if (d !== undefined) values[f.key] = Array.isArray(d) ? [...d] : d;
    }
  }
  for (const f of flags) {
    if (f.spec.required && values[f.key] === undefined)
      return fail(`required option '${f.spec.flags}' not specified`);
  }
  if (positional.length === 0) return fail(`missing required argument '${command.argument.name}'`);
  if (positional.length > 1) {
    return fail(`too many arguments. Expected 1 argument but got ${positional.length}.`);
  }
  return { kind: 'run', argument: positional[0]!, options: values };
}

/** Stores one value; a problem with it as commander words it. */
function setValue(
  f: ParsedFlags,
  values: Record<string, unknown>,
  value: string | boolean,
): string | undefined {
  if (typeof value === 'string' && f.spec.choices && !f.spec.choices.includes(value)) {
    return (
      `option '${f.spec.flags}' argument '${value}' is invalid. ` +
      `Allowed choices are ${f.spec.choices.join(', ')}.`
    );
  }
  if (f.spec.repeatable) {
    // The first occurrence replaces the default list, as commander's collect with a default.
    const list = Array.isArray(values[f.key]) ? (values[f.key] as unknown[]) : [];
    values[f.key] = [...list, value];
  } else values[f.key] = value;
  return undefined;
}

function suffix(spec: OptionSpec): string {
  const parts: string[] = [];
  if (spec.choices) parts.push(`choices: ${spec.choices.map((c) => `"${c}"`).join(', ')}`);
  const d = spec.default;
  if (d !== undefined && !(Array.isArray(d) && d.length === 0) && d !== false) {
    parts.push(`default: ${typeof d === 'string' ? `"${d}"` : JSON.stringify(d)}`);
  }
  if (spec.env) parts.push(`env: ${spec.env}`);
  return parts.length ? ` (${parts.join(', ')})` : '';
}

/** The `--help` text, laid out as commander's. */
export function helpText(command: CommandSpec): string {
  const options = [...command.options, VERSION, HELP];
  const terms = options.map((o) => (o.flags.startsWith('--') ? `    ${o.flags}` : o.flags));
  const width = Math.max(command.argument.name.length, ...terms.map((t) => t.length)) + 2;
  const lines = [
    `Usage: ${command.name} [options] <${command.argument.name}>`,
    '',
    command.description,
    '',
    'Arguments:',
    `  ${command.argument.name.padEnd(width)}${command.argument.description}`,
    '',
    'Options:',
    ...options.map((o, i) => `  ${terms[i]!.padEnd(width)}${o.description}${suffix(o)}`),
  ];
  return `${lines.join('\n')}\n`;
}
