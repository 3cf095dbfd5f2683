// undici, loaded on first use. Sources go through our own agent (http1-agent.ts); undici serves only the proxy's
// forwarding and the embedded scheduler's registry requests, so a daemon that has done neither has not paid for
// it: importing undici-core costs 12-15 MiB of RSS in a bare node (its modules and the compiled WebAssembly HTTP
// parser; 1-8 MiB of an idle daemon's, which loads much of the same Node machinery anyway).

type UndiciCore = typeof import('./undici-core.js');

let loading: Promise<UndiciCore> | undefined;

export function loadUndici(): Promise<UndiciCore> {
  return (loading ??= import('./undici-core.js'));
}
