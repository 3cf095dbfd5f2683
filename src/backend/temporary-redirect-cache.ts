// Remembers where a URL answered `307 Temporary Redirect`, for a TTL, so later pieces of the same task go straight
// to the target (typically a presigned object-storage URL) instead of paying one extra round trip each.
// As upstream `http.rs` (`temporary_redirects`: LRU of 1000 entries, TTL `backend.cacheTemporaryRedirectTTL`).
// Only 307 is cached: 301/308 are permanent but upstream leaves them to the HTTP client, and 302/303 may change
// per request.

/** Upstream `DEFAULT_CACHE_TEMPORARY_REDIRECT_CAPACITY`. */
export const TEMPORARY_REDIRECT_CACHE_CAPACITY = 1000;

interface Entry {
  target: string;
  createdAt: number;
}

export class TemporaryRedirectCache {
  private readonly entries = new Map<string, Entry>();
  private readonly ttlMs: number;
  private readonly capacity: number;
  private readonly now: () => number;

  constructor(options: { ttlMs: number; capacity?: number; now?: () => number }) {
    this.ttlMs = options.ttlMs;
    this.capacity = options.capacity ?? TEMPORARY_REDIRECT_CACHE_CAPACITY;
    this.now = options.now ?? Date.now;
  }

  /** The cached target of `url`, or undefined when none or expired (an expired entry is dropped). */
  get(url: string): string | undefined {
    const entry = this.entries.get(url);
    if (entry === undefined) return undefined;
    if (this.now() - entry.createdAt >= this.ttlMs) {
      this.entries.delete(url);
      return undefined;
    }
    // Map keeps insertion order: re-inserting marks the entry most recently used.
    this.entries.delete(url);
    this.entries.set(url, entry);
    return entry.target;
  }

  set(url: string, target: string): void {
    this.entries.delete(url);
    this.entries.set(url, { target, createdAt: this.now() });
    if (this.entries.size > this.capacity) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }

  delete(url: string): void {
    this.entries.delete(url);
  }

  get size(): number {
    return this.entries.size;
  }
}
