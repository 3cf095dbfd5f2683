// curl as a real HTTP client for proxy tests: status, response headers (lower-cased) and body of one request.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface CurlResult {
  code: number | null;
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  stderr: string;
}

/** Runs `curl -sS ARGS`; the last response's headers are parsed (a proxy's CONNECT answer comes first). */
export function curl(args: string[], timeoutMs = 120_000): Promise<CurlResult> {
  // Headers go to a file: curl crashes here when -D and the error messages share stderr.
  const dir = mkdtempSync(join(tmpdir(), 'dft-curl-'));
  const headerFile = join(dir, 'headers');
  return new Promise((resolve, reject) => {
    const p = spawn('curl', ['-sS', '-D', headerFile, '-o', '-', ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.setEncoding('latin1').on('data', (d: string) => (err += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.once('error', reject);
    p.once('close', (code) => {
      clearTimeout(t);
      let dumped = '';
      try {
        dumped = readFileSync(headerFile, 'latin1');
      } catch {
        // No response at all: curl wrote no header file.
      }
      rmSync(dir, { recursive: true, force: true });
      const blocks = dumped.split(/\r\n\r\n/).filter((b) => /^HTTP\/\d/.test(b.trim()));
      const last = blocks.at(-1)?.trim() ?? '';
      const [statusLine, ...lines] = last.split('\r\n');
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(':');
        if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const status = Number(/^HTTP\/[\d.]+ (\d+)/.exec(statusLine ?? '')?.[1] ?? 0);
      resolve({ code, status, headers, body: Buffer.concat(out), stderr: err });
    });
  });
}
