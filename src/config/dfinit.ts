// The dfinit.yaml schema: upstream's `dragonfly-client-config/src/dfinit.rs`, same keys, same defaults.
// dfinit points one container runtime (containerd, docker, CRI-O or podman) at dfdaemon's proxy; which one is
// the section present under `containerRuntime`. Upstream takes the first of containerd, docker, crio, podman
// and silently ignores the others; we do the same and warn about the ignored ones.

import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { DfError } from '../core/errors.js';
import { SYSTEM_DIRS } from './dirs.js';
import {
  bool,
  field,
  list,
  optionalSection,
  path as filePath,
  section,
  str,
  stringList,
} from './schema-kit.js';
import { issuesToError, parseYamlText, warnUnknownKeys } from './yaml-file.js';

/** Upstream's defaults, by dotted key. */
export const DFINIT_DEFAULTS = {
  'proxy.addr': 'http://127.0.0.1:4001',
  'containerRuntime.containerd.configPath': '/etc/containerd/config.toml',
  'containerRuntime.containerd.registries[].capabilities': ['pull', 'resolve'],
  'containerRuntime.containerd.proxyAllRegistries': true,
  'containerRuntime.docker.configPath': '/etc/docker/daemon.json',
  'containerRuntime.crio.configPath': '/etc/containers/registries.conf',
  'containerRuntime.podman.configPath': '/etc/containers/registries.conf',
  // containers-registries.conf(5), "Global settings".
  'containerRuntime.crio.unqualifiedSearchRegistries': [
    'registry.fedoraproject.org',
    'registry.access.redhat.com',
    'docker.io',
  ],
} as const;

/** /etc/dragonfly/dfinit.yaml, as upstream on Linux. */
export const DEFAULT_DFINIT_CONFIG_PATH = path.join(SYSTEM_DIRS.configDir, 'dfinit.yaml');

export const RUNTIME_KINDS = ['containerd', 'docker', 'crio', 'podman'] as const;
export type RuntimeKind = (typeof RUNTIME_KINDS)[number];

const D = DFINIT_DEFAULTS;

/**
 * The proxy address: an http(s) URL with a host. Upstream takes any string and fails later (docker, CRI-O) or
 * writes it into hosts.toml as is (containerd); we check it here so the error names the key.
 */
const proxyAddr = field(
  'an http URL like "http://127.0.0.1:4001"',
  (v) => {
    if (typeof v !== 'string') return undefined;
    try {
      const u = new URL(v);
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '' ? v : undefined;
    } catch {
      return undefined;
    }
  },
  D['proxy.addr'],
);

/** A registry host namespace ("docker.io", "registry.local:5000", "_default"): one path segment. */
const hostNamespace = field(
  'a registry host like "docker.io" or "registry.local:5000"',
  (v) => (typeof v === 'string' && v !== '' && v !== '.' && v !== '..' && !/[/\\\s]/.test(v) ? v : undefined),
  undefined,
);

const requiredString = (expected: string) =>
  field(expected, (v) => (typeof v === 'string' && v !== '' ? v : undefined), undefined);

/** `ca`: a path or a list of paths (containerd's hosts.md accepts both; upstream's field is a list). */
const caList = field<string[], undefined>(
  'a file path or a list of file paths',
  (v) =>
    typeof v === 'string' ? [v] : Array.isArray(v) && v.every((s) => typeof s === 'string') ? v : undefined,
  undefined,
);

function required<T extends z.ZodType>(schema: T) {
  return schema.superRefine((v, ctx) => {
    if (v === undefined) ctx.addIssue({ code: 'custom', message: 'is required' });
  });
}

const containerdRegistry = section({
  hostNamespace: required(hostNamespace),
  serverAddr: required(requiredString('a registry URL like "https://index.docker.io"')),
  capabilities: stringList(() => [...D['containerRuntime.containerd.registries[].capabilities']]),
  skipVerify: field<boolean, undefined>(
    'true or false',
    (v) => (typeof v === 'boolean' ? v : undefined),
    undefined,
  ),
  ca: caList,
});

/** A `[[registry]]` of registries.conf: `prefix` selects images, `location` is where they live. */
const prefixedRegistry = section({
  prefix: str(''),
  location: required(requiredString('a registry location like "docker.io"')),
});

function registriesConfRuntime(configPath: string) {
  return optionalSection({
    configPath: filePath(configPath),
    unqualifiedSearchRegistries: stringList(() => [
      ...D['containerRuntime.crio.unqualifiedSearchRegistries'],
    ]),
    registries: list(prefixedRegistry, () => []),
  });
}

export function dfinitConfigSchema() {
  return section({
    proxy: section({ addr: proxyAddr }),
    containerRuntime: section({
      containerd: optionalSection({
        configPath: filePath(D['containerRuntime.containerd.configPath']),
        registries: list(containerdRegistry, () => []),
        proxyAllRegistries: bool(D['containerRuntime.containerd.proxyAllRegistries']),
      }),
      docker: optionalSection({ configPath: filePath(D['containerRuntime.docker.configPath']) }),
      crio: registriesConfRuntime(D['containerRuntime.crio.configPath']),
      podman: registriesConfRuntime(D['containerRuntime.podman.configPath']),
    }),
  });
}

type Parsed = z.output<ReturnType<typeof dfinitConfigSchema>>;

export interface ContainerdRegistry {
  hostNamespace: string;
  serverAddr: string;
  capabilities: string[];
  skipVerify?: boolean;
  ca?: string[];
}

export interface ContainerdRuntime {
  kind: 'containerd';
  configPath: string;
  registries: ContainerdRegistry[];
  proxyAllRegistries: boolean;
}

export interface DockerRuntime {
  kind: 'docker';
  configPath: string;
}

export interface PrefixedRegistry {
  prefix: string;
  location: string;
}

export interface RegistriesConfRuntime {
  kind: 'crio' | 'podman';
  configPath: string;
  unqualifiedSearchRegistries: string[];
  registries: PrefixedRegistry[];
}

export type ContainerRuntime = ContainerdRuntime | DockerRuntime | RegistriesConfRuntime;

export interface DfinitConfig {
  proxy: { addr: string };
  /** The runtime to configure; undefined when `containerRuntime` names none (dfinit then does nothing). */
  containerRuntime?: ContainerRuntime;
}

function pickRuntime(p: Parsed, warnings: string[]): ContainerRuntime | undefined {
  const cr = p.containerRuntime;
  const present = RUNTIME_KINDS.filter((k) => cr[k] !== undefined);
  if (present.length > 1) {
    warnings.push(
      `containerRuntime has ${present.join(', ')}; only ${present[0]} is configured ` +
        `(as upstream, one runtime per run), ${present.slice(1).join(', ')} ignored`,
    );
  }
  if (cr.containerd) {
    return {
      kind: 'containerd',
      configPath: cr.containerd.configPath,
      proxyAllRegistries: cr.containerd.proxyAllRegistries,
      registries: (cr.containerd.registries ?? []).map((r) => ({
        hostNamespace: r.hostNamespace!,
        serverAddr: r.serverAddr!,
        capabilities: r.capabilities,
        ...(r.skipVerify === undefined ? {} : { skipVerify: r.skipVerify }),
        ...(r.ca === undefined ? {} : { ca: r.ca }),
      })),
    };
  }
  if (cr.docker) return { kind: 'docker', configPath: cr.docker.configPath };
  for (const kind of ['crio', 'podman'] as const) {
    const c = cr[kind];
    if (c) {
      return {
        kind,
        configPath: c.configPath,
        unqualifiedSearchRegistries: c.unqualifiedSearchRegistries,
        registries: (c.registries ?? []).map((r) => ({ prefix: r.prefix, location: r.location! })),
      };
    }
  }
  return undefined;
}

/**
 * Parses dfinit.yaml text (`file` names it in messages). Throws DfError('INVALID_CONFIG') naming the key on an
 * invalid value; returns one warning per unknown key.
 */
export function parseDfinitConfig(text: string, file: string): { config: DfinitConfig; warnings: string[] } {
  const src = parseYamlText(file, text);
  const warnings: string[] = [];
  const schema = dfinitConfigSchema();
  warnUnknownKeys(src, schema, warnings);
  // Upstream refuses `containerRuntime: {}` (a section naming no runtime) rather than doing nothing.
  const cr = (src.value as { containerRuntime?: unknown }).containerRuntime;
  if (cr !== undefined && cr !== null && typeof cr === 'object' && !Array.isArray(cr)) {
    const named = RUNTIME_KINDS.some((k) => (cr as Record<string, unknown>)[k] != null);
    if (!named) {
      throw new DfError(
        'INVALID_CONFIG',
        `containerRuntime: expected one of containerd, docker, crio or podman (${file})`,
      );
    }
  }
  const result = schema.safeParse(src.value);
  if (!result.success) throw issuesToError(src, result.error.issues, new Map());
  const config: DfinitConfig = { proxy: { addr: result.data.proxy.addr } };
  const runtime = pickRuntime(result.data, warnings);
  if (runtime) config.containerRuntime = runtime;
  return { config, warnings };
}

/** Reads and parses dfinit.yaml; a missing or unreadable file is an error naming it (as upstream). */
export function loadDfinitConfig(file: string): { config: DfinitConfig; warnings: string[] } {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'ENOENT' ? 'no such file' : err.message;
    throw new DfError('INVALID_CONFIG', `cannot read config file ${file}: ${why}`, { cause: e });
  }
  return parseDfinitConfig(text, file);
}
