// HubBackend's refusals and the hub answers it does not take, against a Node HTTP server: a request without the
// hub's message, a repository URL where a file is needed (and the reverse), a listing that is not JSON, and a
// ModelScope listing whose body carries an error code.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HubBackend } from '../../../src/backend/hub.js';
import type { StatRequest } from '../../../src/backend/backend.js';

const OPTIONS = {
  maxRetries: 0,
  enableCacheTemporaryRedirect: false,
  cacheTemporaryRedirectTTLMs: 0,
  requestHeader: {},
};

describe('HubBackend', () => {
  const paths: string[] = [];
  let server: Server;
  let base = '';
  const hf = new HubBackend('hf', OPTIONS);
  const ms = new HubBackend('modelscope', OPTIONS);

  before(async () => {
    server = createServer((req, res) => {
      paths.push(req.url ?? '');
      if (req.url?.startsWith('/api/models/acme/html')) {
        res.writeHead(200, { 'content-type': 'text/html' });
        return res.end('<html>a login page</html>');
      }
      if (req.url?.startsWith('/api/v1/models/acme/gone/repo/files')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ Code: 10010205001, Message: 'repo not exists' }));
      }
      res.writeHead(500);
      res.end();
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    await hf.close();
    await ms.close();
    server.closeAllConnections();
    await new Promise<void>((ok) => server.close(() => ok()));
  });

  const request = (url: string, hub?: StatRequest['hub']): StatRequest => ({
    taskId: 't',
    url,
    requestHeader: {},
    timeoutMs: 5000,
    hub,
  });

  it('refuses a request without the hub message, and a repository where a file is needed', async () => {
    await assert.rejects(
      hf.stat(request('hf://acme/llm/a.bin')),
      /^DfError: hf:\/\/acme\/llm\/a\.bin: the download carries no Hugging Face revision \(--hf-revision\)$/,
    );
    await assert.rejects(
      hf.stat(request('hf://acme/llm', { revision: 'main', baseUrl: base })),
      /hf:\/\/acme\/llm is a Hugging Face repository, not a file: download it with -r/,
    );
    await assert.rejects(
      hf.listEntries(request('hf://acme/llm/a.bin', { revision: 'main', baseUrl: base })),
      /names a file in a Hugging Face repository: only a whole repository/,
    );
    assert.deepEqual(paths, [], 'nothing was asked of the hub');
  });

  it('a listing that is not JSON, or a ModelScope error code, is one BACKEND line', async () => {
    await assert.rejects(
      hf.listEntries(request('hf://acme/html/', { revision: 'main', baseUrl: base })),
      (e: Error & { code?: string }) =>
        e.code === 'BACKEND' &&
        e.message === 'list hf://acme/html/: the Hugging Face API answered something that is not JSON',
    );
    await assert.rejects(
      ms.listEntries(request('modelscope://acme/gone/', { revision: 'master', baseUrl: base })),
      /^DfError: list modelscope:\/\/acme\/gone\/: ModelScope API error: code=10010205001, message=repo not exists$/,
    );
    assert.deepEqual(paths, [
      '/api/models/acme/html?revision=main',
      '/api/v1/models/acme/gone/repo/files?Revision=master&Recursive=true',
    ]);
  });
});
