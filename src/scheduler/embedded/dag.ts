// The per-task graph of peers, edges parent → child (upstream `pkg/graph/dag/dag.go`). An edge is refused when it is
// a self-edge, a duplicate, or would close a cycle (the parent is reachable from the child) unless the caller
// allows cycles for it. No degree limits: how many children a parent serves is the evaluator's business, not the
// graph's.

interface Vertex<V> {
  value: V;
  parents: Set<string>;
  children: Set<string>;
}

export class Dag<V> {
  private readonly vertices = new Map<string, Vertex<V>>();

  get size(): number {
    return this.vertices.size;
  }

  has(id: string): boolean {
    return this.vertices.has(id);
  }

  get(id: string): V | undefined {
    return this.vertices.get(id)?.value;
  }

  /** Adds a vertex; false if the id is already there. */
  addVertex(id: string, value: V): boolean {
    if (this.vertices.has(id)) return false;
    this.vertices.set(id, { value, parents: new Set(), children: new Set() });
    return true;
  }

  /** Removes a vertex with all its in- and out-edges; returns the edges removed as [parent, child] pairs. */
  deleteVertex(id: string): Array<[string, string]> {
    const v = this.vertices.get(id);
    if (!v) return [];
    const removed: Array<[string, string]> = [];
    for (const p of v.parents) {
      this.vertices.get(p)?.children.delete(id);
      removed.push([p, id]);
    }
    for (const c of v.children) {
      this.vertices.get(c)?.parents.delete(id);
      removed.push([id, c]);
    }
    this.vertices.delete(id);
    return removed;
  }

  values(): IterableIterator<V> {
    return (function* (m: Map<string, Vertex<V>>) {
      for (const v of m.values()) yield v.value;
    })(this.vertices);
  }

  inDegree(id: string): number | undefined {
    return this.vertices.get(id)?.parents.size;
  }

  outDegree(id: string): number | undefined {
    return this.vertices.get(id)?.children.size;
  }

  parents(id: string): string[] {
    return [...(this.vertices.get(id)?.parents ?? [])];
  }

  children(id: string): string[] {
    return [...(this.vertices.get(id)?.children ?? [])];
  }

  /** Whether `to` can be reached from `from` following edges parent → child (DFS, iterative). */
  reachable(from: string, to: string): boolean {
    if (from === to) return true;
    const seen = new Set<string>([from]);
    const stack = [from];
    while (stack.length > 0) {
      const cur = this.vertices.get(stack.pop()!);
      if (!cur) continue;
      for (const c of cur.children) {
        if (c === to) return true;
        if (!seen.has(c)) {
          seen.add(c);
          stack.push(c);
        }
      }
    }
    return false;
  }

  /**
   * Whether parent → child may be added: both exist, distinct, not yet linked, and no cycle would form (unless
   * `allowCycle`).
   */
  canAddEdge(parent: string, child: string, allowCycle = false): boolean {
    if (parent === child) return false;
    const p = this.vertices.get(parent);
    const c = this.vertices.get(child);
    if (!p || !c) return false;
    if (p.children.has(child)) return false;
    return allowCycle || !this.reachable(child, parent);
  }

  addEdge(parent: string, child: string, allowCycle = false): boolean {
    if (!this.canAddEdge(parent, child, allowCycle)) return false;
    this.vertices.get(parent)!.children.add(child);
    this.vertices.get(child)!.parents.add(parent);
    return true;
  }

  deleteEdge(parent: string, child: string): boolean {
    const p = this.vertices.get(parent);
    const c = this.vertices.get(child);
    if (!p || !c || !p.children.has(child)) return false;
    p.children.delete(child);
    c.parents.delete(parent);
    return true;
  }

  /** Removes every edge into `id`; returns the parents it had. */
  deleteInEdges(id: string): string[] {
    const v = this.vertices.get(id);
    if (!v) return [];
    const parents = [...v.parents];
    for (const p of parents) this.vertices.get(p)?.children.delete(id);
    v.parents.clear();
    return parents;
  }
}
