// dfget --include-files: which files of a directory download to take. A pattern is a path relative to the
// directory URL (upstream: a plain path joined to the URL, a `dir/` listed), and may be a glob (`*`, `?`, `[...]`
// within a path segment, `**` across segments) matched against each listed file's relative path. Patterns that
// could name something outside the directory are refused before anything is asked of dfdaemon: an absolute path,
// `.` or `..` segments, an empty segment, a backslash or a control character.

import { DfError } from './errors.js';

export interface IncludePattern {
  /** The pattern as given. */
  source: string;
  /** Present for a glob; absent for a plain path (joined to the directory URL as upstream does). */
  match?: RegExp;
}

const GLOB_CHARS = /[*?[]/;

export function parseIncludeFiles(patterns: readonly string[]): IncludePattern[] {
  return patterns.map((p) => {
    checkRelative(p);
    return GLOB_CHARS.test(p) ? { source: p, match: globRegExp(p) } : { source: p };
  });
}

function refuse(pattern: string, why: string): never {
  throw new DfError(
    'INVALID_ARGUMENT',
    `invalid --include-files ${JSON.stringify(pattern)}: ${why}; expected a path relative to the directory URL`,
  );
}

function checkRelative(p: string): void {
  if (p === '') refuse(p, 'it is empty');
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(p)) refuse(p, 'it holds a control character');
  if (p.includes('\\')) refuse(p, 'it holds a backslash');
  if (p.startsWith('/')) refuse(p, 'it is absolute');
  // A trailing `/` names a directory; every other segment must be a name.
  const segments = (p.endsWith('/') ? p.slice(0, -1) : p).split('/');
  for (const s of segments) {
    if (s === '') refuse(p, 'it has an empty segment (//)');
    if (s === '.' || s === '..') refuse(p, `it has a "${s}" segment`);
    if (/%2e|%2f|%5c/i.test(s)) refuse(p, 'it has an encoded dot, slash or backslash');
  }
}

/** The glob as an anchored RegExp over a relative path; throws for an unclosed `[`. */
function globRegExp(p: string): RegExp {
  let out = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*') {
      if (p[i + 1] === '*') {
        // `**/` matches zero or more whole segments; a final `**` matches the rest.
        if (p[i + 2] === '/') {
          out += '(?:[^/]+/)*';
          i += 2;
        } else {
          out += '.*';
          i += 1;
        }
      } else {
        out += '[^/]*';
      }
    } else if (c === '?') {
      out += '[^/]';
    } else if (c === '[') {
      const end = p.indexOf(']', i + 2);
      if (end < 0) refuse(p, 'it has an unclosed [');
      let body = p.slice(i + 1, end);
      const negated = body.startsWith('!') || body.startsWith('^');
      if (negated) body = body.slice(1);
      if (body.includes('/')) refuse(p, 'a [...] class may not hold /');
      out += `[${negated ? '^/' : ''}${body.replace(/[\\\]]/g, '\\$&')}]`;
      i = end;
    } else {
      out += c.replace(/[.+^${}()|\\]/g, '\\$&');
    }
  }
  try {
    return new RegExp(`^${out}$`, 'u');
  } catch {
    refuse(p, 'it is not a valid glob');
  }
}
