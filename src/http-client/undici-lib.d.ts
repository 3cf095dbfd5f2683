// Types for the files of undici that undici-core.ts imports directly (undici declares only its index).

declare module 'undici/lib/dispatcher/dispatcher.js' {
  const Dispatcher: { prototype: object };
  export default Dispatcher;
}
declare module 'undici/lib/api/index.js' {
  const api: object;
  export default api;
}
declare module 'undici/lib/dispatcher/agent.js' {
  import type { Agent } from 'undici';
  const AgentClass: typeof Agent;
  export default AgentClass;
}
declare module 'undici/lib/core/connect.js' {
  import type { buildConnector } from 'undici';
  const build: typeof buildConnector;
  export default build;
}
declare module 'undici/lib/core/util.js' {
  export function parseURL(url: string): URL;
}
declare module 'undici/lib/core/symbols.js' {
  const symbols: { kParser: symbol };
  export default symbols;
}
