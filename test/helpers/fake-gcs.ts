// gs:// under test: fake-gcs-server (Go, installed by scripts/install-object-stores.sh), in memory, one bucket,
// behind a recording proxy. It checks no credentials: wrong credentials here are a credential file that is not a
// service account key, which must fail as that (not fall back to another source of credentials).

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Operator } from 'opendal';
import { ProcessStore, toolsDir, type ObjectStoreUnderTest, type StoreRequest } from './object-store.js';

export class FakeGcsStore extends ProcessStore implements ObjectStoreUnderTest {
  readonly scheme = 'gs';
  readonly server = 'fake-gcs-server';
  /** gs is reached without a credential file here: nothing secret is sent. */
  readonly secret = 'no-secret-for-fake-gcs-server';

  constructor(readonly bucket: string) {
    super();
  }

  protected command(port: number) {
    const data = join(this.dir, 'data');
    // A directory under -data is a bucket created at start.
    mkdirSync(join(data, this.bucket), { recursive: true });
    return {
      cmd: join(toolsDir(), 'bin/fake-gcs-server'),
      args: [
        '-scheme',
        'http',
        '-host',
        '127.0.0.1',
        '-port',
        String(port),
        '-backend',
        'memory',
        '-data',
        data,
        '-log-level',
        'error',
      ],
    };
  }

  protected readyUrl(port: number): string {
    return `http://127.0.0.1:${port}/storage/v1/b`;
  }

  protected async prepare(): Promise<void> {}

  async put(key: string, data: Buffer): Promise<void> {
    const op = new Operator('gcs', {
      bucket: this.bucket,
      endpoint: this.direct,
      allow_anonymous: 'true',
      disable_vm_metadata: 'true',
      disable_config_load: 'true',
    });
    await op.write(key, data);
  }

  /** opendal reads an object with the JSON API's media download: `/storage/v1/b/B/o/KEY?alt=media` + Range. */
  isPieceRead(r: StoreRequest, key: string): boolean {
    return r.method === 'GET' && r.path === `/storage/v1/b/${this.bucket}/o/${key}` && r.range !== undefined;
  }

  flags(): string[] {
    return ['--storage-endpoint', this.proxied];
  }

  wrongCredentials() {
    const file = join(this.dir, 'not-a-key.json');
    const secret = 'not-a-private-key-3141';
    writeFileSync(
      file,
      JSON.stringify({ type: 'service_account', client_email: 'x@y', private_key: secret }),
    );
    return {
      flags: ['--storage-endpoint', this.proxied, '--storage-credential-path', file],
      secrets: [secret],
      message: /cannot load credentials for the gs store: check --storage-credential-path/,
    };
  }
}
