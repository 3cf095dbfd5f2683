// Test images built offline with umoci in a temp dir: an optional layer holding busybox-static (bin/busybox and
// bin/sh), then one layer per requested size, each holding one file of deterministic pseudo-random bytes
// (AES-128-CTR keystream keyed by a seed) so that gzip cannot shrink it: a layer of N bytes gives a blob of a bit
// more than N bytes, and sizes above 4 MiB make blobs the proxy downloads through P2P. Every timestamp is the epoch,
// so the same arguments give the same blobs and the same manifest digest.
//
// Layers are tarred by GNU tar (sorted, mtime 0, uid/gid 0) and added with `umoci raw add-layer`: `umoci insert`
// of Debian's umoci 0.4.7 writes tar streams that end early (the last ~1.2 KiB, end-of-archive blocks included, are
// missing), which a registry accepts but an unpacking runtime need not.

import { createCipheriv, createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from './daemon.js';
import { mustRun, which } from './exec.js';
import { layoutManifestDigest, type OciBlob, type Skopeo } from './skopeo.js';

export type { OciBlob } from './skopeo.js';

export function findUmoci(): string | undefined {
  return which('umoci');
}

/** busybox from busybox-static (a static binary that runs in an otherwise empty rootfs), or undefined. */
export function findBusybox(): string | undefined {
  return which('busybox');
}

export interface LayerSpec {
  /** Bytes of the file inside the layer (the blob is a little larger: tar headers and gzip framing). */
  size: number;
  /** Seed of the file's bytes; default: the image seed and the layer's index. */
  seed?: string;
}

export interface OciImage {
  /** The temp dir holding the layout (remove() deletes it). */
  dir: string;
  /** The OCI layout, for `oci:LAYOUT:TAG`. */
  layout: string;
  tag: string;
  manifestDigest: string;
  manifestSize: number;
  config: OciBlob;
  /** The layers in manifest order (busybox first when included). */
  layers: OciBlob[];
  /** Config and layers: every blob a pull fetches besides the manifest. */
  blobs: OciBlob[];
  remove(): void;
}

interface Manifest {
  config: OciBlob;
  layers: OciBlob[];
}

/** Writes `size` bytes of AES-128-CTR keystream keyed by sha256(seed) to `path`; returns its sha256 hex. */
export async function writePseudoRandomFile(path: string, size: number, seed: string): Promise<string> {
  const key = createHash('sha256').update(seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(4 << 20);
  const h = createHash('sha256');
  const fh = await open(path, 'w');
  try {
    for (let off = 0; off < size; off += zeros.length) {
      const n = Math.min(zeros.length, size - off);
      const chunk = cipher.update(zeros.subarray(0, n));
      h.update(chunk);
      let done = 0;
      while (done < n) done += (await fh.write(chunk, done, n - done, off + done)).bytesWritten;
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

const TAR_FLAGS = ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '--format=gnu'];

/**
 * Builds an image in a new temp dir. `layers` gives the data layers (a number is a size); the data of layer i is
 * /data/layer-i.bin. Scratch files are removed; only the layout stays.
 */
export async function buildImage(opts: {
  layers: (number | LayerSpec)[];
  tag?: string;
  /** Prepend the busybox layer (default true; needs busybox-static). */
  busybox?: boolean;
  /** Seed of the data layers (default "dft"). */
  seed?: string;
  umoci?: string;
}): Promise<OciImage> {
  const umoci = opts.umoci ?? findUmoci();
  if (!umoci) throw new Error('umoci is not installed');
  const tag = opts.tag ?? 'v1';
  const seed = opts.seed ?? 'dft';
  const dir = tempDir('dft-image-');
  const layout = join(dir, 'layout');
  const scratch = join(dir, 'scratch');
  mkdirSync(scratch);
  const ref = `${layout}:${tag}`;
  try {
    await mustRun(umoci, ['init', '--layout', layout]);
    await mustRun(umoci, ['new', '--image', ref]);
    const addLayer = async (root: string, member: string, name: string) => {
      const tar = join(scratch, `${name}.tar`);
      await mustRun('tar', [...TAR_FLAGS, '-C', root, '-cf', tar, member]);
      await mustRun(umoci, [
        'raw',
        'add-layer',
        '--image',
        ref,
        '--history.comment',
        name,
        '--history.created',
        '1970-01-01T00:00:00Z',
        tar,
      ]);
      rmSync(tar, { force: true });
    };
    if (opts.busybox ?? true) {
      const busybox = findBusybox();
      if (!busybox) throw new Error('busybox (busybox-static) is not installed');
      const root = join(scratch, 'busybox');
      mkdirSync(join(root, 'bin'), { recursive: true });
      copyFileSync(busybox, join(root, 'bin', 'busybox'));
      symlinkSync('busybox', join(root, 'bin', 'sh'));
      await addLayer(root, 'bin', 'busybox');
      rmSync(root, { recursive: true, force: true });
    }
    for (const [i, l] of opts.layers.entries()) {
      const spec = typeof l === 'number' ? { size: l } : l;
      const root = join(scratch, `layer-${i}`);
      mkdirSync(join(root, 'data'), { recursive: true });
      await writePseudoRandomFile(
        join(root, 'data', `layer-${i}.bin`),
        spec.size,
        spec.seed ?? `${seed}:${i}`,
      );
      await addLayer(root, 'data', `layer-${i}`);
      rmSync(root, { recursive: true, force: true });
    }
    await mustRun(umoci, [
      'config',
      '--image',
      ref,
      '--no-history',
      '--created',
      '1970-01-01T00:00:00Z',
      '--config.cmd',
      '/bin/sh',
    ]);
    await mustRun(umoci, ['gc', '--layout', layout]);
    rmSync(scratch, { recursive: true, force: true });
    return readImage(dir, layout, tag);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

function readBlob(layout: string, digest: string): Buffer {
  const [alg, hex] = digest.split(':');
  return readFileSync(join(layout, 'blobs', alg!, hex!));
}

function readImage(dir: string, layout: string, tag: string): OciImage {
  const manifestDigest = layoutManifestDigest(layout, tag);
  if (!manifestDigest) throw new Error(`${layout} has no manifest tagged ${tag}`);
  const raw = readBlob(layout, manifestDigest);
  const m = JSON.parse(raw.toString('utf8')) as Manifest;
  const pick = (b: OciBlob): OciBlob => ({ digest: b.digest, size: b.size, mediaType: b.mediaType });
  const config = pick(m.config);
  const layers = m.layers.map(pick);
  return {
    dir,
    layout,
    tag,
    manifestDigest,
    manifestSize: raw.length,
    config,
    layers,
    blobs: [config, ...layers],
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/**
 * Pushes the image with skopeo to `dest` ("127.0.0.1:PORT/REPO:TAG") over plain HTTP; returns the digest of the
 * manifest as the registry stored it (skopeo's --digestfile), which is the layout's when nothing was converted.
 */
export async function pushImage(skopeo: Skopeo, img: OciImage, dest: string): Promise<string> {
  await skopeo.share(img.dir);
  const digestFile = skopeo.path(`digest-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  const r = await skopeo.copy(`oci:${img.layout}:${img.tag}`, `docker://${dest}`, { digestFile });
  if (r.code !== 0) throw new Error(`skopeo push to ${dest} failed (${r.code}):\n${r.stderr}`);
  const digest = readFileSync(digestFile, 'utf8').trim();
  rmSync(digestFile, { force: true });
  return digest;
}
