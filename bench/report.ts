// Renders benchmark figures as a console table and as Markdown.

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

export function markdown(r: Report): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const out = [
    `# Benchmark ${r.date}`,
    '',
    `Machine: ${machineLine(r.machine)}`,
    '',
    `Origin: nginx on loopback (sendfile on). dfget and curl write to the same filesystem. Run took ${r.durationS.toFixed(0)} s.`,
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
