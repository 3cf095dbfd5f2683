// What the registry e2e tests share: the tools they need, and a real registry holding images built offline with
// umoci and pushed with skopeo, plus the containerds a test starts, all removed by close().

import { rmSync } from 'node:fs';
import { Containerd, findContainerd } from './containerd.js';
import { tempDir } from './daemon.js';
import { buildImage, findBusybox, findUmoci, pushImage, type OciImage } from './oci-image.js';
import { findRegistry, Registry } from './registry.js';
import { findSkopeo, Skopeo } from './skopeo.js';

export interface RegistryTools {
  registry?: string;
  skopeo?: string;
  /** Optional: tests that need it skip without it. */
  containerd?: { containerd: string; ctr: string };
  /** The names of the required tools that are not installed (docker-registry, skopeo, umoci, busybox). */
  missing: string[];
}

export function findRegistryTools(): RegistryTools {
  const registry = findRegistry();
  const skopeo = findSkopeo();
  const containerd = findContainerd();
  const found: [string, unknown][] = [
    ['docker-registry', registry],
    ['skopeo', skopeo],
    ['umoci', findUmoci()],
    ['busybox', findBusybox()],
    ['containerd', containerd],
  ];
  const missing = found.filter(([, p]) => !p).map(([n]) => n);
  return { registry, skopeo, containerd, missing };
}

export type ImageSpec = Parameters<typeof buildImage>[0];

/**
 * A temp work dir, a docker-registry and a skopeo, made at once; start() builds the images and pushes them. close()
 * stops and removes whatever was made, also after a start() that failed half-way.
 */
export class RegistryEnv {
  readonly work: string;
  readonly registry: Registry;
  readonly skopeo: Skopeo;
  private readonly images: OciImage[] = [];
  private readonly containerds: Containerd[] = [];

  constructor(
    readonly tools: RegistryTools,
    workPrefix: string,
  ) {
    this.work = tempDir(workPrefix);
    this.registry = new Registry(tools.registry!);
    this.skopeo = new Skopeo(tools.skopeo!);
  }

  /**
   * Builds each image (in order), starts the registry and pushes image i as `<registry>/<repos[i]>`, e.g. "t/x:v1".
   * Returns the images and the manifest digests the registry stored.
   */
  async start(
    images: { repo: string; spec: ImageSpec }[],
  ): Promise<{ image: OciImage; pushedDigest: string }[]> {
    const built: OciImage[] = [];
    for (const { spec } of images) {
      const image = await buildImage(spec);
      this.images.push(image);
      built.push(image);
    }
    await this.registry.start();
    const out: { image: OciImage; pushedDigest: string }[] = [];
    for (const [i, image] of built.entries()) {
      out.push({
        image,
        pushedDigest: await pushImage(this.skopeo, image, `${this.registry.host}/${images[i]!.repo}`),
      });
    }
    return out;
  }

  /** A started containerd (see Containerd), stopped by close(). Only when `tools.containerd` was found. */
  async containerd(): Promise<Containerd> {
    const c = new Containerd(this.tools.containerd!);
    this.containerds.push(c);
    await c.start();
    return c;
  }

  async close(): Promise<void> {
    for (const c of this.containerds) await c.stop();
    await this.registry.stop();
    this.skopeo.remove();
    for (const image of this.images) image.remove();
    rmSync(this.work, { recursive: true, force: true });
  }
}
