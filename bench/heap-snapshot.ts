// Heap snapshots of a running dfdaemon for the soak (SOAK_HEAP_SNAPSHOTS=1): what the V8 heap holds after warm-up
// and at the end, summed by constructor, so that RSS growth over the run is either traced to objects or shown to be
// outside the heap (buffers, the allocator). The daemon must have been started with
// `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=DIR` (NODE_OPTIONS).

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The node flags (for NODE_OPTIONS) that let takeHeapSnapshot ask the daemon for a snapshot in `dir`. */
export function heapSnapshotNodeOptions(dir: string): string {
  return `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${dir}`;
}

/**
 * Signals `pid` to write a heap snapshot into `dir` and waits until the new file stops growing; returns its path.
 * Writing one pauses the daemon for about a second and takes memory of its own while it runs.
 */
export async function takeHeapSnapshot(pid: number, dir: string, timeoutMs = 120_000): Promise<string> {
  const before = new Set(readdirSync(dir));
  process.kill(pid, 'SIGUSR2');
  const deadline = performance.now() + timeoutMs;
  let lastSize = -1;
  while (performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    const file = readdirSync(dir).find((f) => f.endsWith('.heapsnapshot') && !before.has(f));
    if (!file) continue;
    const size = statSync(join(dir, file)).size;
    if (size > 0 && size === lastSize) return join(dir, file);
    lastSize = size;
  }
  throw new Error(`no heap snapshot from pid ${pid} in ${dir} within ${timeoutMs / 1000} s`);
}

export interface HeapSummary {
  /** Sum of every node's self size: the live V8 heap, about process.memoryUsage().heapUsed after a full GC. */
  totalBytes: number;
  /** Self size by group: an object's constructor name, or "(closure)", "(code)", "(string)", "(array)" … */
  byGroup: Map<string, number>;
}

interface SnapshotFile {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

/** Groups a snapshot's nodes as the Chrome DevTools "Summary" view does, by constructor for objects. */
export function summarizeHeapSnapshot(path: string): HeapSummary {
  const s = JSON.parse(readFileSync(path, 'utf8')) as SnapshotFile;
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const width = fields.length;
  const typeAt = fields.indexOf('type');
  const nameAt = fields.indexOf('name');
  const sizeAt = fields.indexOf('self_size');
  const byGroup = new Map<string, number>();
  let totalBytes = 0;
  for (let i = 0; i < s.nodes.length; i += width) {
    const type = types[s.nodes[i + typeAt]!]!;
    const size = s.nodes[i + sizeAt]!;
    const group =
      type === 'object'
        ? s.strings[s.nodes[i + nameAt]!]!
        : type.includes('string')
          ? '(string)'
          : `(${type})`;
    byGroup.set(group, (byGroup.get(group) ?? 0) + size);
    totalBytes += size;
  }
  return { totalBytes, byGroup };
}

/** The `top` groups that grew most from `a` to `b`, in bytes, largest first. */
export function heapGrowth(
  a: HeapSummary,
  b: HeapSummary,
  top = 10,
): Array<{ group: string; bytes: number }> {
  const groups = new Set([...a.byGroup.keys(), ...b.byGroup.keys()]);
  return [...groups]
    .map((group) => ({ group, bytes: (b.byGroup.get(group) ?? 0) - (a.byGroup.get(group) ?? 0) }))
    .sort((x, y) => y.bytes - x.bytes)
    .slice(0, top);
}
