// Picks the backend for a URL by its scheme (upstream `BackendFactory::build`). Built-in schemes are listed in
// BUILTIN_BACKENDS: a new source family adds one line there (or is registered at runtime, as plugins will be),
// and callers keep asking `factory.get(url)`. Backends are built on first use, so an unused scheme costs nothing.

import { DfError } from '../core/errors.js';
import type { Backend } from './backend.js';
import { HttpBackend } from './http.js';
import type { HttpBackendOptions } from './http.js';
import { ObjectStorageBackend } from './object-storage.js';
import { HubBackend } from './hub.js';
import { HdfsBackend } from './hdfs.js';
import { HUBS } from './hub-url.js';
import { OBJECT_STORAGE_SERVICES } from '../core/object-storage-scheme.js';

/** The `backend.*` settings of dfdaemon.yaml (and the download's certificate chain) every backend is built from. */
export type BackendFactoryOptions = HttpBackendOptions;

/** Builds the backend serving `scheme`. */
export type BackendConstructor = (scheme: string, options: BackendFactoryOptions) => Backend;

/** The schemes this client serves out of the box. */
const BUILTIN_BACKENDS: Readonly<Record<string, BackendConstructor>> = {
  http: (scheme, options) => new HttpBackend(scheme, options),
  https: (scheme, options) => new HttpBackend(scheme, options),
  hdfs: (scheme, options) => new HdfsBackend(scheme, options),
  ...Object.fromEntries(
    Object.keys(OBJECT_STORAGE_SERVICES).map((scheme): [string, BackendConstructor] => [
      scheme,
      (s, options) => new ObjectStorageBackend(s, options),
    ]),
  ),
  ...Object.fromEntries(
    Object.keys(HUBS).map((scheme): [string, BackendConstructor] => [
      scheme,
      (s, options) => new HubBackend(s, options),
    ]),
  ),
};

export class BackendFactory {
  private readonly options: BackendFactoryOptions;
  private readonly constructors = new Map<string, BackendConstructor>(Object.entries(BUILTIN_BACKENDS));
  private readonly backends = new Map<string, Backend>();
  private closed = false;

  constructor(options: BackendFactoryOptions) {
    this.options = options;
  }

  /** Adds (or replaces) the backend for a scheme, e.g. one loaded from the plugin directory. */
  register(scheme: string, backend: Backend | BackendConstructor): void {
    const previous = this.backends.get(scheme);
    this.backends.delete(scheme);
    if (previous !== undefined) void previous.close().catch(() => {});
    if (typeof backend === 'function') {
      this.constructors.set(scheme, backend);
    } else {
      this.constructors.delete(scheme);
      this.backends.set(scheme, backend);
    }
  }

  /** The schemes served, sorted. */
  schemes(): string[] {
    return [...new Set([...this.constructors.keys(), ...this.backends.keys()])].sort();
  }

  supports(scheme: string): boolean {
    return this.backends.has(scheme) || this.constructors.has(scheme);
  }

  /** The backend for the URL's scheme; BACKEND_UNSUPPORTED for a scheme nothing serves. */
  get(url: string): Backend {
    if (this.closed) throw new DfError('UNAVAILABLE', 'backend factory is closed');
    const scheme = schemeOf(url);
    const existing = this.backends.get(scheme);
    if (existing !== undefined) return existing;
    const construct = this.constructors.get(scheme);
    if (construct === undefined) {
      throw new DfError(
        'BACKEND_UNSUPPORTED',
        `unsupported scheme "${scheme}" in ${url.split('?')[0]}; supported: ${this.schemes().join(', ')}`,
      );
    }
    const backend = construct(scheme, this.options);
    this.backends.set(scheme, backend);
    return backend;
  }

  /** Closes every backend built so far; idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    const backends = [...this.backends.values()];
    this.backends.clear();
    await Promise.all(backends.map((b) => b.close()));
  }
}

function schemeOf(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw new DfError('INVALID_ARGUMENT', `invalid url "${url.split('?')[0]}"`, { cause });
  }
  // URL.protocol is lower-cased and ends with ':'.
  return parsed.protocol.slice(0, -1);
}
