// Where this daemon may connect on a remote caller's behalf (issue 16 item 5: SSRF). A download a remote caller
// asked for (a scheduler triggering a seed, a preheat, a proxy client that is not on this host) must not reach
// this machine's loopback services, its private network or a cloud's instance metadata service, unless the
// address is in `security.allowedPrivateSources`. The check is made on the address actually connected to:
// host names are resolved here and the connection goes to the checked IP (no second lookup a DNS answer could
// change), and every connection is checked, redirects included.

import { lookup as dnsLookup } from 'node:dns/promises';
import type { buildConnector as Connector } from 'undici';
import { loadUndici } from '../http-client/lazy-undici.js';
import { AddressList, normalizeIp, specialAddressKind } from '../core/addresses.js';
import { DfError } from '../core/errors.js';

export type Lookup = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

const systemLookup: Lookup = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

export interface SourceAddressPolicyOptions {
  /** security.allowedPrivateSources: IPs, CIDRs and host names a remote caller may make us fetch from. */
  allow: AddressList;
  /** DNS; tests inject one. */
  lookup?: Lookup;
}

export class SourceAddressPolicy {
  readonly allow: AddressList;
  private readonly lookup: Lookup;

  constructor(o: SourceAddressPolicyOptions) {
    this.allow = o.allow;
    this.lookup = o.lookup ?? systemLookup;
  }

  /** A policy that allows everything an empty allow-list does not (for tests and callers that need a default). */
  static denyPrivate(): SourceAddressPolicy {
    return new SourceAddressPolicy({ allow: new AddressList([], 'security.allowedPrivateSources') });
  }

  /**
   * The address to connect to for `host` on a remote caller's behalf: an IP literal as it is, a host name
   * resolved. Throws PERMISSION_DENIED when the address is not public and not allowed (a host name is allowed by
   * name, or when one of its addresses is allowed or public: that one is used).
   */
  async resolve(host: string, port?: number | string): Promise<string> {
    const literal = normalizeIp(host);
    if (literal) {
      this.check(literal.ip, host, port);
      return literal.ip;
    }
    // A failed lookup is thrown as it is: the backend reports it as it reports its own (cannot resolve ...).
    const addresses = await this.lookup(host);
    if (addresses.length === 0) {
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    }
    if (this.allow.hasHost(host)) return addresses[0]!.address;
    const usable = addresses.find((a) => this.allowed(a.address));
    if (usable) return usable.address;
    this.check(addresses[0]!.address, host, port);
    return addresses[0]!.address;
  }

  /** Resolves and checks the host of a URL (before any work on a remote caller's behalf). */
  async checkUrl(url: string): Promise<void> {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new DfError('INVALID_ARGUMENT', `invalid url "${url}"`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return;
    try {
      await this.resolve(parsed.hostname, parsed.port);
    } catch (e) {
      // Only the verdict matters here; a host that does not resolve fails the download where it is fetched.
      if (e instanceof DfError) throw e;
    }
  }

  /** Whether a remote caller may make us connect to this IP. */
  allowed(ip: string): boolean {
    return specialAddressKind(ip) === undefined || this.allow.hasIp(ip);
  }

  private check(ip: string, host: string, port?: number | string): void {
    if (this.allowed(ip)) return;
    const where = port ? `${host}:${port}` : host;
    const via = normalizeIp(host) ? '' : ` (${ip})`;
    throw new DfError(
      'PERMISSION_DENIED',
      `${where}${via} is a ${specialAddressKind(ip)} address: a remote caller may not make dfdaemon connect ` +
        `there; list it in security.allowedPrivateSources to allow it`,
    );
  }

  /**
   * An undici connector that resolves and checks every connection's host first and connects to the checked IP
   * (TLS still verifies the certificate against the host name, and sends it as SNI).
   */
  connector(options: Connector.BuildOptions): Connector.connector {
    let base: Connector.connector | undefined;
    return (opts, callback) => {
      const host = opts.hostname;
      // undici is loaded already when its agent calls this (lazy-undici.ts hands out the same module).
      Promise.all([this.resolve(host, opts.port), loadUndici()]).then(
        // undici takes the TLS server name from opts.host (the URL's), not from the hostname connected to.
        ([ip, undici]) => {
          base ??= undici.buildConnector(options);
          base({ ...opts, hostname: ip }, callback);
        },
        (e: unknown) => callback(e as Error, null),
      );
    };
  }
}
