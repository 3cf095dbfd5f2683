// The table-driven command line parser of dfget (cli/argv.ts): commander's conventions and error lines, checked
// on dfget's own table so that every documented flag form keeps working.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { helpText, parseCommandLine, type CommandSpec } from '../../../src/cli/argv.js';

const COMMAND: CommandSpec = {
  name: 'tool',
  description: 'A test command.',
  argument: { name: 'url', description: 'the URL' },
  version: 'tool 1.2.3',
  options: [
    { flags: '-O, --output <path>', description: 'output', required: true },
    { flags: '--overwrite', description: 'replace', default: false },
    { flags: '--timeout <duration>', description: 'timeout', default: '2h' },
    { flags: '-H, --header <header>', description: 'header', default: [], repeatable: true },
    { flags: '--param <p>', description: 'param', repeatable: true },
    {
      flags: '--policy <p>',
      description: 'policy',
      default: 'auto',
      env: 'T_POLICY',
      choices: ['auto', 'always'],
    },
    { flags: '--transfer', description: 'transfer', default: false, env: 'T_TRANSFER' },
    { flags: '--skip-verify [bool]', description: 'skip', env: 'T_SKIP' },
    { flags: '--no-progress', description: 'no bar' },
  ],
};

function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = parseCommandLine(COMMAND, args, env);
  assert.equal(r.kind, 'run', JSON.stringify(r));
  return r.kind === 'run' ? r : assert.fail();
}

function error(args: string[], env: NodeJS.ProcessEnv = {}): string {
  const r = parseCommandLine(COMMAND, args, env);
  assert.ok(r.kind === 'exit' && r.code === 1, JSON.stringify(r));
  return r.stderr!;
}

test('defaults when nothing is given', () => {
  assert.deepEqual(run(['u', '-O', 'o']), {
    kind: 'run',
    argument: 'u',
    options: {
      output: 'o',
      overwrite: false,
      timeout: '2h',
      header: [],
      policy: 'auto',
      transfer: false,
      progress: true,
    },
  });
});

test('every way of writing a value', () => {
  for (const args of [
    ['-O', 'o', 'u'],
    ['-Oo', 'u'],
    ['--output', 'o', 'u'],
    ['--output=o', 'u'],
    ['u', '--output', 'o'],
  ]) {
    const r = run(args);
    assert.deepEqual([r.argument, r.options.output], ['u', 'o'], args.join(' '));
  }
  assert.equal(run(['u', '-O', '-dash-file']).options.output, '-dash-file');
  assert.equal(run(['-O', 'o', '--', '-u']).argument, '-u');
});

test('switches, negations and repeatable options', () => {
  const r = run([
    'u',
    '-O',
    'o',
    '--overwrite',
    '--no-progress',
    '-H',
    'A: 1',
    '--header=B: 2',
    '--param',
    'x',
  ]);
  assert.equal(r.options.overwrite, true);
  assert.equal(r.options.progress, false);
  assert.deepEqual(r.options.header, ['A: 1', 'B: 2']);
  assert.deepEqual(r.options.param, ['x']);
});

test('an optional value: alone it is true, else the next word unless it is an option', () => {
  assert.equal(run(['u', '-O', 'o', '--skip-verify']).options.skipVerify, true);
  assert.equal(run(['u', '-O', 'o', '--skip-verify', '--overwrite']).options.skipVerify, true);
  assert.equal(run(['-O', 'o', '--skip-verify', 'false', 'u']).options.skipVerify, 'false');
});

test('the environment gives a value the command line does not', () => {
  const env = { T_POLICY: 'always', T_TRANSFER: '', T_SKIP: 'true' };
  const r = run(['u', '-O', 'o'], env);
  assert.deepEqual([r.options.policy, r.options.transfer, r.options.skipVerify], ['always', true, 'true']);
  assert.equal(run(['u', '-O', 'o', '--policy', 'auto'], env).options.policy, 'auto');
  assert.match(error(['u', '-O', 'o'], { T_POLICY: 'never' }), /argument 'never' is invalid/);
});

test('mistakes are one line each, in commander’s words', () => {
  const cases: [string[], string][] = [
    [['u'], "error: required option '-O, --output <path>' not specified\n"],
    [['-O', 'o'], "error: missing required argument 'url'\n"],
    [['u', 'v', '-O', 'o'], 'error: too many arguments. Expected 1 argument but got 2.\n'],
    [['u', '-O', 'o', '--bogus'], "error: unknown option '--bogus'\n"],
    [['u', '-O'], "error: option '-O, --output <path>' argument missing\n"],
    [['u', '-O', 'o', '--overwrite=yes'], "error: option '--overwrite' does not take an argument\n"],
    [
      ['u', '-O', 'o', '--policy', 'x'],
      "error: option '--policy <p>' argument 'x' is invalid. Allowed choices are auto, always.\n",
    ],
  ];
  for (const [args, line] of cases) assert.equal(error(args), line, args.join(' '));
});

test('--help and --version print and exit 0, before any check', () => {
  for (const flag of ['-h', '--help']) {
    const r = parseCommandLine(COMMAND, [flag]);
    assert.ok(r.kind === 'exit' && r.code === 0 && r.stdout === helpText(COMMAND));
  }
  for (const flag of ['-V', '--version']) {
    assert.deepEqual(parseCommandLine(COMMAND, ['--bogus-later', flag].slice(1)), {
      kind: 'exit',
      code: 0,
      stdout: 'tool 1.2.3\n',
    });
  }
  const help = helpText(COMMAND);
  assert.match(help, /^Usage: tool \[options\] <url>\n/);
  assert.match(help, /--policy <p> +policy \(choices: "auto", "always", default: "auto", env: T_POLICY\)/);
  assert.match(help, /-h, --help +display help for command/);
});
