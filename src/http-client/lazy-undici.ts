// undici, loaded on first use. Sources go through our own agent (http1-agent.ts); undici serves only the proxy's
// forwarding and the embedded scheduler's registry requests, so a daemon that has done neither has not paid for it: importing undici-core costs 12-15 MiB of RSS (its modules and the compiled
// WebAssembly HTTP parser), measured in a bare node.

type UndiciCore = typeof import('./undici-core.js');

let loading: Promise<UndiciCore> | undefined;

export function loadUndici(): Promise<UndiciCore> {
  return (loading ??= import('./undici-core.js'));
}
