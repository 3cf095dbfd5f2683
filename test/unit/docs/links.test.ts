// Every relative link in README.md and docs/*.md leads somewhere: the file exists in the repository, and a
// `#anchor` names a heading of the page it points to (GitHub's heading ids). The reference moved from the README
// into docs/ pages (issue 17); links and anchors that no longer resolve fail here instead of on a reader.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url));

/** The pages checked: README.md and every docs/*.md. */
function pages(): string[] {
  const docs = join(ROOT, 'docs');
  return [
    join(ROOT, 'README.md'),
    ...readdirSync(docs)
      .filter((f) => f.endsWith('.md'))
      .sort()
      .map((f) => join(docs, f)),
  ];
}

/** The text outside fenced code blocks and code spans, where a Markdown link is a link. */
function prose(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '``');
}

/** GitHub's heading id: lower case, punctuation dropped, spaces to hyphens; repeats get -1, -2, … */
function headingIds(markdown: string): Set<string> {
  const ids = new Set<string>();
  const seen = new Map<string, number>();
  const withoutBlocks = markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
  for (const m of withoutBlocks.matchAll(/^#{1,6}[ \t]+(.+?)[ \t#]*$/gm)) {
    const text = m[1]!.replace(/\[([^\]]*)\]\([^)]*\)/g, '$1');
    const base = text
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\p{M}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    ids.add(n === 0 ? base : `${base}-${n}`);
  }
  return ids;
}

/** Every inline link or image target of the page, outside code. */
function links(markdown: string): string[] {
  return [...prose(markdown).matchAll(/!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]!);
}

test('the heading ids follow GitHub', () => {
  assert.deepEqual(
    [
      ...headingIds(
        '# A small cluster around `dfscheduler`\n## Resume, and an origin that changes\n## X\n## X\n',
      ),
    ],
    ['a-small-cluster-around-dfscheduler', 'resume-and-an-origin-that-changes', 'x', 'x-1'],
  );
});

test('every relative link and #anchor in README.md and docs/*.md resolves', () => {
  const broken: string[] = [];
  for (const page of pages()) {
    const text = readFileSync(page, 'utf8');
    for (const target of links(text)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
      const [path = '', anchor] = target.split('#', 2) as [string, string | undefined];
      const file = path === '' ? page : resolve(dirname(page), decodeURIComponent(path));
      const where = `${relative(ROOT, page)}: (${target})`;
      if (relative(ROOT, file).startsWith('..')) {
        broken.push(`${where} points outside the repository`);
        continue;
      }
      if (!existsSync(file)) {
        broken.push(`${where}: ${relative(ROOT, file)} does not exist`);
        continue;
      }
      if (anchor === undefined) continue;
      if (!file.endsWith('.md')) {
        broken.push(`${where}: an anchor into a file that is not Markdown`);
        continue;
      }
      const ids = headingIds(readFileSync(file, 'utf8'));
      if (!ids.has(anchor)) {
        broken.push(
          `${where}: no heading #${anchor} in ${relative(ROOT, file)} (has: ${[...ids].join(', ')})`,
        );
      }
    }
  }
  assert.deepEqual(broken, []);
});

test('every docs page is linked from the README', () => {
  const readme = links(readFileSync(join(ROOT, 'README.md'), 'utf8')).map((t) => t.split('#')[0]);
  const unlinked = pages()
    .slice(1)
    .map((p) => relative(ROOT, p))
    .filter((p) => !readme.includes(p));
  assert.deepEqual(unlinked, []);
});
