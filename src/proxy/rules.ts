// Which proxied requests go through P2P (upstream find_matching_rule / make_download_url): the first of
// `proxy.rules` whose regex matches the URL without query and fragment. `useTLS` turns the scheme to https,
// `redirect` replaces the authority.

import type { ProxyRule } from '../config/dfdaemon.js';
import { compileRustRegex } from '../config/schema-kit.js';

/**
 * Used when `proxy.rules` is not set at all: registry blobs go through P2P, everything else is forwarded. This is
 * the rule of upstream's example dfdaemon.yaml and Helm chart; upstream's binary has no rules without config.
 * `rules: []` turns P2P routing by rule off.
 */
export const DEFAULT_RULES: readonly ProxyRule[] = Object.freeze([
  { regex: 'blobs/sha256.*', useTLS: false, filteredQueryParams: [], schedulingPolicy: 'auto' },
]);

/** The rule used for X-Dragonfly-Use-P2P: true (upstream's Rule::default). */
export const HEADER_RULE: ProxyRule = Object.freeze({
  regex: '.*',
  useTLS: false,
  filteredQueryParams: [],
  schedulingPolicy: 'auto',
});

export class ProxyRules {
  private readonly compiled: { rule: ProxyRule; re: RegExp }[];

  constructor(rules: readonly ProxyRule[] | undefined) {
    this.compiled = (rules ?? DEFAULT_RULES).map((rule) => ({ rule, re: compileRustRegex(rule.regex) }));
  }

  /** The first rule matching `url` (query and fragment ignored), if any. */
  match(url: URL): ProxyRule | undefined {
    const bare = new URL(url);
    bare.search = '';
    bare.hash = '';
    const s = bare.href;
    return this.compiled.find(({ re }) => {
      re.lastIndex = 0;
      return re.test(s);
    })?.rule;
  }
}

/** The URL P2P downloads: the request URL with the rule's scheme and authority changes. */
export function downloadUrl(url: URL, rule: ProxyRule): string {
  const out = new URL(url);
  if (rule.useTLS) {
    // The WHATWG setter refuses http→https only for special→non-special; both are special, so this works.
    // The scheme goes first: a redirect port that is http's default (80) must survive the switch to https.
    out.protocol = 'https:';
  }
  if (rule.redirect) {
    // `redirect` is an authority (host[:port]); URL setters would keep a stale port, so set both. Parsed with
    // the final scheme, so only that scheme's default port is left implicit.
    const r = new URL(`${out.protocol}//${rule.redirect}`);
    out.hostname = r.hostname;
    out.port = r.port;
  }
  return out.href;
}
