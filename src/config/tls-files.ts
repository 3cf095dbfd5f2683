// TLS keys of the configs: `caCert`, `cert` and `key` (PEM file paths), as upstream names them in every section
// that has them (upload.server, upload.client, manager, scheduler; dfdaemon.rs `load_*_tls_config`). Two roles:
//
//   server (upload.server, storage.server, embeddedScheduler; dfscheduler's server.tls): `cert` + `key` turn TLS
//     on; `caCert` as well asks every client for a certificate signed by it (mTLS).
//   client (upload.client, storage.client, scheduler, manager; dfscheduler's seedPeer.tls): `caCert` turns TLS on
//     and is what the server's certificate must chain to, with the name or IP the client dialled; `cert` + `key`
//     are presented to servers that ask (mTLS).
//
// Upstream reads the three files only when all three are set and silently stays in plaintext otherwise; here a set
// that cannot work (a certificate without its key, a server CA without a server certificate, a client certificate
// without the CA to check the server by) is an error naming the key, as is a file that cannot be read, is not PEM,
// holds a key that is not the certificate's, or a certificate out of its validity period.

import { readFile } from 'node:fs/promises';
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import type { z } from 'zod';
import { DfError } from '../core/errors.js';

export type TlsRole = 'server' | 'client';

/** A section's TLS keys, as in the YAML: PEM file paths. */
export interface TlsFiles {
  caCert?: string;
  cert?: string;
  key?: string;
}

/** The contents of a section's TLS files, read and checked. */
export interface TlsMaterial {
  /** PEM: the CA certificate(s) the other side's certificate must chain to. */
  caCert?: Buffer;
  /** PEM: this side's certificate (chain). */
  cert?: Buffer;
  /** PEM: the private key of `cert`. */
  key?: Buffer;
  /** The section the files came from, e.g. "upload.client" (for messages). */
  section: string;
}

/**
 * The checks of one section's TLS keys, for `section(shape, refine)`: each issue names the key (its path within the
 * section) and, in its message, the sibling keys by their full names under `prefix`.
 */
export function tlsKeysRefine(prefix: string, role: TlsRole) {
  return (v: TlsFiles, ctx: z.RefinementCtx): void => {
    for (const issue of tlsKeyIssues(prefix, v, role)) {
      ctx.addIssue({ code: 'custom', path: [issue.key], message: issue.message });
    }
  };
}

/** What is wrong with a section's set of TLS keys (not the files: loadTlsFiles reads those). */
export function tlsKeyIssues(
  prefix: string,
  v: TlsFiles,
  role: TlsRole,
): Array<{ key: keyof TlsFiles; message: string }> {
  const issues: Array<{ key: keyof TlsFiles; message: string }> = [];
  if (v.cert && !v.key) {
    issues.push({
      key: 'key',
      message: `expected the private key of ${prefix}.cert (a file path): ${prefix}.cert is set without it`,
    });
  }
  if (v.key && !v.cert) {
    issues.push({
      key: 'cert',
      message: `expected the certificate of ${prefix}.key (a file path): ${prefix}.key is set without it`,
    });
  }
  if (role === 'server' && v.caCert && !v.cert && !v.key) {
    issues.push({
      key: 'caCert',
      message:
        `needs ${prefix}.cert and ${prefix}.key: a server asks for client certificates signed by caCert (mTLS) ` +
        `only when it speaks TLS with a certificate of its own`,
    });
  }
  if (role === 'client' && !v.caCert && v.cert && v.key) {
    issues.push({
      key: 'caCert',
      message:
        `expected the CA certificate that signed the servers' certificates (a file path): ${prefix}.cert and ` +
        `${prefix}.key are set without it, and TLS needs a CA to check the server by`,
    });
  }
  return issues;
}

/** Whether the keys turn TLS on: a server with a certificate, a client with a CA. */
export function tlsEnabled(v: TlsFiles, role: TlsRole): boolean {
  return role === 'server' ? !!(v.cert && v.key) : !!v.caCert;
}

/**
 * Reads and checks a section's TLS files; undefined when its keys do not turn TLS on. Throws
 * DfError('INVALID_CONFIG') naming the key and the file for anything that would make every handshake fail.
 */
export async function loadTlsFiles(
  prefix: string,
  v: TlsFiles,
  role: TlsRole,
  now: number = Date.now(),
): Promise<TlsMaterial | undefined> {
  const issue = tlsKeyIssues(prefix, v, role)[0];
  if (issue) throw new DfError('INVALID_CONFIG', `${prefix}.${issue.key}: ${issue.message}`);
  if (!tlsEnabled(v, role)) return undefined;
  const material: TlsMaterial = { section: prefix };
  if (v.caCert) {
    material.caCert = await readTlsFile(`${prefix}.caCert`, v.caCert);
    certificates(`${prefix}.caCert`, v.caCert, material.caCert);
  }
  if (v.cert && v.key) {
    material.cert = await readTlsFile(`${prefix}.cert`, v.cert);
    material.key = await readTlsFile(`${prefix}.key`, v.key);
    const leaf = certificates(`${prefix}.cert`, v.cert, material.cert)[0]!;
    let key: KeyObject;
    try {
      key = createPrivateKey(material.key);
    } catch (e) {
      throw invalid(`${prefix}.key`, `${v.key} is not a PEM private key (${(e as Error).message})`);
    }
    if (key.type !== 'private' || !leaf.checkPrivateKey(key)) {
      throw invalid(`${prefix}.key`, `${v.key} is not the private key of ${prefix}.cert (${v.cert})`);
    }
    const from = Date.parse(leaf.validFrom);
    const to = Date.parse(leaf.validTo);
    if (now < from) {
      throw invalid(`${prefix}.cert`, `${v.cert} is not valid before ${new Date(from).toISOString()}`);
    }
    if (now > to) throw invalid(`${prefix}.cert`, `${v.cert} expired on ${new Date(to).toISOString()}`);
  }
  return material;
}

function invalid(key: string, what: string): DfError {
  return new DfError('INVALID_CONFIG', `${key}: ${what}`);
}

async function readTlsFile(key: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (e) {
    throw invalid(key, `cannot read ${path}: ${(e as Error).message}`);
  }
}

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** The PEM certificates of a file, each parsed; at least one. */
function certificates(key: string, path: string, pem: Buffer): X509Certificate[] {
  const blocks = pem.toString('utf8').match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0)
    throw invalid(key, `${path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (e) {
      throw invalid(key, `certificate ${i + 1} of ${path} cannot be parsed (${(e as Error).message})`);
    }
  });
}
