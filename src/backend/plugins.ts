// Backend plugins: JavaScript modules in `{server.pluginDir}/backend/`, one per scheme, the scheme being the file
// name (`ftp.mjs` serves ftp://). Upstream loads Rust cdylibs from the same directory (`lib<scheme>.so`,
// `load_plugin_backends`); ours are ES modules. A module's default export builds the backend:
//
//   export default function create({ scheme }) { return { scheme, stat, get, listEntries?, close? }; }
//
// (or is that object itself). Loading happens once at start-up; a plugin that fails to load, or exports something
// that is not a backend, stops the daemon with one line naming the file, as a bad .so aborts upstream's start.
// At run time the plugin's answers are held to the same contract as the built-in backends: errors become DfErrors
// naming the plugin, and a piece's body is counted, so a short or long body fails instead of looking finished.

import { readdir } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { DfError, toDfError } from '../core/errors.js';
import type { Backend, DirEntry, GetRequest, GetResponse, StatRequest, StatResponse } from './backend.js';
import { SourceBody } from './source-body.js';

/** Module file names loaded as plugins. */
const PLUGIN_EXTENSIONS: ReadonlySet<string> = new Set(['.js', '.mjs']);

/** A URL scheme (RFC 3986 §3.1), lower case as URL.protocol gives it. */
const SCHEME = /^[a-z][a-z0-9+.-]*$/;

/** What the plugin's create function receives. */
export interface PluginContext {
  scheme: string;
}

export interface LoadedPlugin {
  scheme: string;
  file: string;
  backend: Backend;
}

/**
 * Loads every plugin module in `dir` (a missing directory has none), sorted by file name. Throws INVALID_CONFIG
 * naming the file for the first that cannot be used.
 */
export async function loadBackendPlugins(dir: string): Promise<LoadedPlugin[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new DfError('INVALID_CONFIG', `backend plugin directory ${dir}: ${toDfError(e).message}`);
  }
  const loaded: LoadedPlugin[] = [];
  for (const name of names.filter((n) => PLUGIN_EXTENSIONS.has(extname(n))).sort()) {
    const file = join(dir, name);
    loaded.push({ ...(await loadPlugin(file)), file });
  }
  return loaded;
}

async function loadPlugin(file: string): Promise<{ scheme: string; backend: Backend }> {
  const fail = (why: string, cause?: unknown): never => {
    throw new DfError('INVALID_CONFIG', `backend plugin ${file}: ${why}`, { cause });
  };
  const scheme = basename(file, extname(file));
  if (!SCHEME.test(scheme)) {
    fail(
      `"${scheme}" is not a URL scheme: name the file <scheme>.mjs with a-z, 0-9, +, - or . (a letter first)`,
    );
  }
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (e) {
    return fail(`cannot be loaded: ${firstLine(e)}`, e);
  }
  let made: unknown = mod.default;
  try {
    if (typeof made === 'function') made = await (made as (c: PluginContext) => unknown)({ scheme });
  } catch (e) {
    return fail(`its default export threw: ${firstLine(e)}`, e);
  }
  const candidate = made as Partial<Backend> | undefined;
  if (candidate === null || typeof candidate !== 'object') {
    return fail('the default export must be a backend object or a function that returns one');
  }
  for (const method of ['stat', 'get'] as const) {
    if (typeof candidate[method] !== 'function') fail(`the backend has no ${method}() function`);
  }
  for (const method of ['listEntries', 'close'] as const) {
    if (candidate[method] !== undefined && typeof candidate[method] !== 'function') {
      fail(`the backend's ${method} is not a function`);
    }
  }
  return { scheme, backend: new PluginBackend(scheme, file, candidate as Backend) };
}

/** A plugin's backend held to the built-in backends' contract. */
export class PluginBackend implements Backend {
  readonly listEntries?: (request: StatRequest) => Promise<DirEntry[]>;

  constructor(
    readonly scheme: string,
    private readonly file: string,
    private readonly plugin: Backend,
  ) {
    if (plugin.listEntries) {
      const list = plugin.listEntries.bind(plugin);
      this.listEntries = (request) => this.call('listEntries', () => list(request));
    }
  }

  async stat(request: StatRequest): Promise<StatResponse> {
    const res = await this.call('stat', () => this.plugin.stat(request));
    if (
      res.contentLength !== undefined &&
      !(Number.isSafeInteger(res.contentLength) && res.contentLength >= 0)
    ) {
      throw this.broken(`stat() returned contentLength ${String(res.contentLength)}`);
    }
    return {
      statusCode: res.statusCode ?? 200,
      responseHeader: res.responseHeader ?? {},
      contentLength: res.contentLength,
    };
  }

  async get(request: GetRequest): Promise<GetResponse> {
    const res = await this.call('get', () => this.plugin.get(request));
    const body = res?.body as unknown;
    if (!(body instanceof Readable) && !isAsyncIterable(body)) {
      throw this.broken('get() returned no body: expected a Readable or an async iterable of Buffers');
    }
    const counted = new SourceBody(body as AsyncIterable<Buffer>, {
      expectedLength: request.range?.length,
      description: `${this.scheme} plugin ${request.url.split('?')[0]}`,
      mapError: (e) => this.wrap('get', e),
      onClose: () => undefined,
    });
    return { statusCode: res.statusCode ?? 200, responseHeader: res.responseHeader ?? {}, body: counted };
  }

  async close(): Promise<void> {
    await this.plugin.close?.();
  }

  private async call<T>(what: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work();
    } catch (e) {
      throw this.wrap(what, e);
    }
  }

  /** A plugin's error as a DfError: its own DfError-like code is kept, anything else is a BACKEND error. */
  private wrap(what: string, e: unknown): DfError {
    if (e instanceof DfError) return e;
    const code = (e as { code?: unknown })?.code;
    if (code === 'SOURCE_CHANGED' || code === 'PERMISSION_DENIED' || code === 'INVALID_ARGUMENT') {
      return new DfError(code, `${this.scheme} plugin: ${firstLine(e)}`, { cause: e });
    }
    const message = `${this.scheme} plugin ${what}: ${firstLine(e)}`;
    return new DfError('BACKEND', message, { cause: e, backend: { header: {}, message } });
  }

  private broken(why: string): DfError {
    return new DfError('BACKEND', `${this.scheme} plugin ${this.file}: ${why}`);
  }
}

function isAsyncIterable(v: unknown): boolean {
  return typeof (v as AsyncIterable<unknown>)?.[Symbol.asyncIterator] === 'function';
}

function firstLine(e: unknown): string {
  return String((e as Error)?.message ?? e).split('\n')[0]!;
}
