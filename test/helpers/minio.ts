// s3:// under test on MinIO (go install github.com/minio/minio, by scripts/install-object-stores.sh), one bucket,
// behind a recording proxy. MinIO checks SigV4 signatures: wrong credentials are a real 403. The bucket is made
// with a CreateBucket request (`PUT /bucket/`) that opendal presigns: opendal itself does not create buckets.

import { join } from 'node:path';
import { Operator } from 'opendal';
import { ProcessStore, toolsDir, type ObjectStoreUnderTest, type StoreRequest } from './object-store.js';

const USER = 'dftest-admin';
const PASSWORD = 'dftest-minio-secret-5a1c';

export class MinioStore extends ProcessStore implements ObjectStoreUnderTest {
  readonly scheme = 's3';
  readonly server = 'MinIO';
  readonly secret = PASSWORD;

  constructor(readonly bucket: string) {
    super();
  }

  protected command(port: number) {
    // MinIO takes its root credentials from the environment, which spawnLogged passes on.
    process.env.MINIO_ROOT_USER = USER;
    process.env.MINIO_ROOT_PASSWORD = PASSWORD;
    // No web console and no update check: a test needs neither, and neither can reach anything here.
    process.env.MINIO_BROWSER = 'off';
    process.env.MINIO_UPDATE = 'off';
    return {
      cmd: join(toolsDir(), 'bin/minio'),
      args: ['server', join(this.dir, 'data'), '--address', `127.0.0.1:${port}`, '--quiet'],
    };
  }

  protected readyUrl(port: number): string {
    return `http://127.0.0.1:${port}/minio/health/ready`;
  }

  /** The test's own S3 client, to the store directly. */
  operator(): Operator {
    return new Operator('s3', {
      bucket: this.bucket,
      region: 'us-east-1',
      endpoint: this.direct,
      access_key_id: USER,
      secret_access_key: PASSWORD,
    });
  }

  protected async prepare(): Promise<void> {
    const create = await this.operator().presignWrite('', 60);
    const res = await fetch(create.url, { method: 'PUT', headers: create.headers });
    if (res.status !== 200) throw new Error(`MinIO CreateBucket answered ${res.status}: ${await res.text()}`);
  }

  async put(key: string, data: Buffer): Promise<void> {
    await this.operator().write(key, data);
  }

  isPieceRead(r: StoreRequest, key: string): boolean {
    return r.method === 'GET' && r.path === `/${this.bucket}/${key}` && r.range !== undefined;
  }

  flags(): string[] {
    return [
      '--storage-endpoint',
      this.proxied,
      '--storage-access-key-id',
      USER,
      '--storage-access-key-secret',
      PASSWORD,
    ];
  }

  wrongCredentials() {
    const secret = 'not-the-minio-password-1618';
    return {
      flags: [
        '--storage-endpoint',
        this.proxied,
        '--storage-access-key-id',
        USER,
        '--storage-access-key-secret',
        secret,
      ],
      secrets: [secret],
      message: /permission denied by the s3 store \(HTTP 403\): check --storage-access-key-id/,
    };
  }
}
