// abs:// under test: Azurite's blob service (npm azurite, installed by scripts/install-object-stores.sh), behind a
// recording proxy, with the emulator's well-known development account. Azurite checks SharedKey signatures, so
// wrong credentials are a real 403. The container is made with one SharedKey-signed REST call (Create Container):
// opendal writes blobs but does not create containers.

import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import { Operator } from 'opendal';
import { ProcessStore, toolsDir, type ObjectStoreUnderTest, type StoreRequest } from './object-store.js';

/** Azurite's development storage account (documented, public). */
const ACCOUNT = 'devstoreaccount1';
const ACCOUNT_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export class AzuriteStore extends ProcessStore implements ObjectStoreUnderTest {
  readonly scheme = 'abs';
  readonly server = 'Azurite';
  readonly secret = ACCOUNT_KEY;

  constructor(readonly bucket: string) {
    super();
  }

  protected command(port: number) {
    return {
      cmd: join(toolsDir(), 'azurite/node_modules/.bin/azurite-blob'),
      args: [
        '--blobHost',
        '127.0.0.1',
        '--blobPort',
        String(port),
        '--location',
        join(this.dir, 'data'),
        '--silent',
        '--skipApiVersionCheck',
        '--disableTelemetry',
      ],
    };
  }

  protected readyUrl(port: number): string {
    return `http://127.0.0.1:${port}/${ACCOUNT}?comp=list`;
  }

  /** Create Container (REST), signed with SharedKey: the string-to-sign of the Blob service, version 2021-08-06. */
  protected async prepare(): Promise<void> {
    const headers: Record<string, string> = {
      'x-ms-date': new Date().toUTCString(),
      'x-ms-version': '2021-08-06',
    };
    const canonicalHeaders = Object.keys(headers)
      .sort()
      .map((k) => `${k}:${headers[k]}\n`)
      .join('');
    // VERB, then 11 standard headers (all empty here; a zero Content-Length is signed as empty).
    const toSign = `PUT${'\n'.repeat(12)}${canonicalHeaders}/${ACCOUNT}/${ACCOUNT}/${this.bucket}\nrestype:container`;
    const signature = createHmac('sha256', Buffer.from(ACCOUNT_KEY, 'base64'))
      .update(toSign, 'utf8')
      .digest('base64');
    const res = await fetch(`${this.direct}/${ACCOUNT}/${this.bucket}?restype=container`, {
      method: 'PUT',
      headers: { ...headers, authorization: `SharedKey ${ACCOUNT}:${signature}` },
    });
    if (res.status !== 201)
      throw new Error(`Azurite Create Container answered ${res.status}: ${await res.text()}`);
  }

  async put(key: string, data: Buffer): Promise<void> {
    const op = new Operator('azblob', {
      container: this.bucket,
      endpoint: `${this.direct}/${ACCOUNT}`,
      account_name: ACCOUNT,
      account_key: ACCOUNT_KEY,
    });
    await op.write(key, data);
  }

  isPieceRead(r: StoreRequest, key: string): boolean {
    return r.method === 'GET' && r.path === `/${ACCOUNT}/${this.bucket}/${key}` && r.range !== undefined;
  }

  flags(): string[] {
    return [
      '--storage-endpoint',
      `${this.proxied}/${ACCOUNT}`,
      '--storage-access-key-id',
      ACCOUNT,
      '--storage-access-key-secret',
      ACCOUNT_KEY,
    ];
  }

  wrongCredentials() {
    const wrongKey = Buffer.from('not-the-account-key-2718').toString('base64');
    return {
      flags: [
        '--storage-endpoint',
        `${this.proxied}/${ACCOUNT}`,
        '--storage-access-key-id',
        ACCOUNT,
        '--storage-access-key-secret',
        wrongKey,
      ],
      secrets: [wrongKey],
      message:
        /permission denied by the abs store \(HTTP 403\): check --storage-access-key-id \(account name\)/,
    };
  }
}
