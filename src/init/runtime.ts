// What dfinit changes for the configured runtime: reads the runtime's files and returns every file it manages
// with its content now and the content it should have. Writing (or, for --dry-run, showing) is the caller's.

import type {
  ContainerRuntime,
  ContainerdRuntime,
  DfinitConfig,
  RegistriesConfRuntime,
} from '../config/dfinit.js';
import { defaultHostsToml, hostsToml, hostsTomlPath, planContainerdConfig } from './containerd.js';
import { planDockerDaemonJson } from './docker.js';
import { readText, readTextIfExists, type FileChange } from './files.js';
import { proxyLocation } from './proxy-location.js';
import { planRegistriesConf } from './registries-conf.js';

export interface InitPlan {
  runtime: ContainerRuntime['kind'];
  /** Every file dfinit manages for this runtime, changed or not. */
  changes: FileChange[];
  /** What changed beyond the obvious, for the person running dfinit. */
  notes: string[];
  /** How to make the runtime read its changed config, when `restartFor` files changed. */
  restart?: { hint: string; restartFor: string[] };
}

function planContainerd(rt: ContainerdRuntime, proxyAddr: string): InitPlan {
  const before = readText(rt.configPath, 'the containerd config (containerRuntime.containerd.configPath)');
  const plan = planContainerdConfig(before, rt.configPath);
  const changes: FileChange[] = [{ path: rt.configPath, before, after: plan.text }];
  const hostFile = (ns: string, after: string) => {
    const p = hostsTomlPath(plan.certsDir, ns);
    changes.push({ path: p, before: readTextIfExists(p), after });
  };
  for (const r of rt.registries) hostFile(r.hostNamespace, hostsToml(r, proxyAddr));
  if (rt.proxyAllRegistries) hostFile('_default', defaultHostsToml(proxyAddr));
  return {
    runtime: 'containerd',
    changes,
    notes: plan.notes,
    // containerd reads hosts.toml on every pull; only config.toml needs a restart.
    restart: {
      hint: 'restart containerd to apply it: systemctl restart containerd',
      restartFor: [rt.configPath],
    },
  };
}

function planRegistriesConfRuntime(rt: RegistriesConfRuntime, proxyAddr: string): InitPlan {
  const before = readTextIfExists(rt.configPath);
  const after = planRegistriesConf(before, rt.configPath, {
    unqualifiedSearchRegistries: rt.unqualifiedSearchRegistries,
    registries: rt.registries,
    proxyLocation: proxyLocation(proxyAddr),
  });
  return {
    runtime: rt.kind,
    changes: [{ path: rt.configPath, before, after }],
    notes: [],
    // podman reads registries.conf on every command; CRI-O on start and on SIGHUP.
    restart:
      rt.kind === 'crio'
        ? { hint: 'reload CRI-O to apply it: systemctl reload crio', restartFor: [rt.configPath] }
        : undefined,
  };
}

/** The plan for `config`'s runtime; undefined when dfinit.yaml names none. Throws DfError naming the file. */
export function planInit(config: DfinitConfig): InitPlan | undefined {
  const rt = config.containerRuntime;
  const addr = config.proxy.addr;
  if (!rt) return undefined;
  switch (rt.kind) {
    case 'containerd':
      return planContainerd(rt, addr);
    case 'docker': {
      const before = readTextIfExists(rt.configPath);
      const after = planDockerDaemonJson(before, rt.configPath, proxyLocation(addr));
      return {
        runtime: 'docker',
        changes: [{ path: rt.configPath, before, after }],
        notes: [],
        restart: {
          hint: 'restart docker to apply it: systemctl restart docker',
          restartFor: [rt.configPath],
        },
      };
    }
    case 'crio':
    case 'podman':
      return planRegistriesConfRuntime(rt, addr);
  }
}
