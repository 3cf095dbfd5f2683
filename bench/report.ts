// Renders benchmark figures as a console table and as Markdown, and writes them to bench/results/.

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Machine } from './machine.js';
import { machineLine } from './machine.js';

export interface Figure {
  /** What was measured. */
  name: string;
  value: number;
  unit: string;
  /** The target as text (e.g. "≤ 1.0"), or "" for a figure given for context. */
  target: string;
  /** Whether the value meets the target; undefined for context figures. */
  ok?: boolean;
  note?: string;
}

export interface Report {
  date: string;
  machine: Machine;
  figures: Figure[];
  samples: Record<string, number[]>;
  notes: string[];
  durationS: number;
}

export function fmt(v: number, unit: string): string {
  if (!Number.isFinite(v)) return 'n/a';
  const digits = unit === 'ratio' ? 3 : Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  return `${v.toFixed(digits)}${unit === 'ratio' ? '' : ` ${unit}`}`;
}

function verdict(f: Figure): string {
  if (f.ok === undefined) return '';
  return f.ok ? 'yes' : 'NO';
}

function rows(r: Report): string[][] {
  return r.figures.map((f) => [f.name, fmt(f.value, f.unit), f.target, verdict(f), f.note ?? '']);
}

const HEADER = ['figure', 'value', 'target', 'met', 'note'];

export function consoleTable(r: Report): string {
  const all = [HEADER, ...rows(r)];
  const widths = HEADER.map((_, i) => Math.max(...all.map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [
    line(HEADER),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...rows(r).map(line),
    '',
    `machine: ${machineLine(r.machine)}`,
  ].join('\n');
}

/** How a benchmark's Markdown differs from the default: its title ("<title> <date>") and what its origin is. */
export interface MarkdownOptions {
  title?: string;
  origin?: string;
}

export function markdown(r: Report, o: MarkdownOptions = {}): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const origin = o.origin ?? 'nginx on loopback (sendfile on). dfget and curl write to the same filesystem.';
  const out = [
    `# ${o.title ?? 'Benchmark'} ${r.date}`,
    '',
    `Machine: ${machineLine(r.machine)}`,
    '',
    `Origin: ${origin} Run took ${r.durationS.toFixed(0)} s.`,
    '',
    `| ${HEADER.join(' | ')} |`,
    `| ${HEADER.map(() => '---').join(' | ')} |`,
    ...rows(r).map((row) => `| ${row.map(esc).join(' | ')} |`),
    '',
  ];
  if (r.notes.length > 0) out.push('Notes:', '', ...r.notes.map((n) => `- ${n}`), '');
  out.push('Samples (ms or bytes as named):', '', '```json', JSON.stringify(r.samples), '```', '');
  return out.join('\n');
}

/** bench/results/ in the source tree (this file runs as dist/bench/report.js). */
export const RESULTS_DIR = fileURLToPath(new URL('../../bench/results/', import.meta.url));

/**
 * Ends a benchmark begun at `began` (performance.now()): prints the report's table and notes, and writes it to
 * bench/results/ as `<prefix>latest.json`, `<prefix>latest.md` and `<prefix>YYYY-MM-DD.md`. Returns the report.
 */
export function publishReport(
  parts: Omit<Report, 'date' | 'durationS'> & { began: number },
  o: MarkdownOptions & { prefix: string; log: (msg: string) => void },
): Report {
  const date = new Date().toISOString();
  const report: Report = {
    date,
    machine: parts.machine,
    figures: parts.figures,
    samples: parts.samples,
    notes: parts.notes,
    durationS: (performance.now() - parts.began) / 1000,
  };
  process.stdout.write(`\n${consoleTable(report)}\n`);
  for (const n of report.notes) process.stdout.write(`note: ${n}\n`);
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(join(RESULTS_DIR, `${o.prefix}latest.json`), `${JSON.stringify(report, null, 2)}\n`);
  const md = markdown(report, o);
  writeFileSync(join(RESULTS_DIR, `${o.prefix}latest.md`), md);
  writeFileSync(join(RESULTS_DIR, `${o.prefix}${date.slice(0, 10)}.md`), md);
  o.log(`wrote ${RESULTS_DIR}${o.prefix}latest.json, ${o.prefix}latest.md`);
  return report;
}
