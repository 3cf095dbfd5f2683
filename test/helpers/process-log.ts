// Reading a child process's JSON log lines (our binaries log JSON to stderr with --console).

import type { ChildProcess } from 'node:child_process';

/**
 * Collects every stderr line of `proc` into `logs` and resolves with the parsed line whose message is `msg`
 * (e.g. "dfdaemon started"); rejects, with the log so far, if the process exits first or after `timeoutMs`.
 */
export function waitForLogLine<T>(
  proc: ChildProcess,
  msg: string,
  logs: string[],
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(
      () => reject(new Error(`${what} did not start:\n${logs.join('\n')}`)),
      timeoutMs,
    );
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (d: string) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        logs.push(line);
        if (line.includes(`"${msg}"`)) {
          clearTimeout(timer);
          resolve(JSON.parse(line) as T);
        }
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code}:\n${logs.join('\n')}${buf}`));
    });
  });
}
