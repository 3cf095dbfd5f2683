// gRPC credentials from a config section's TLS files (config/tls-files.ts), for every server and client of ours.
//
// Clients: TLS whenever the section's caCert is set, whatever the address looks like. Upstream builds its
// scheduler, parent and (usually) manager addresses as http://…, and tonic applies a TLS config only to https://
// URIs, so upstream's scheduler.* and upload.client.* keys never turn TLS on; ours do. The server's certificate is
// checked against the CA and against the host dialled (an IP for schedulers and parents: the certificate must name
// it as an IP subjectAltName), as upstream's ClientTlsConfig does with the address's host as domain name.

import { credentials, ServerCredentials, type ChannelCredentials } from '@grpc/grpc-js';
import type { TlsMaterial } from '../config/tls-files.js';

/** TLS with `tls.caCert` (and the client certificate, if any); plaintext without. */
export function channelCredentials(tls: TlsMaterial | undefined): ChannelCredentials {
  if (!tls?.caCert) return credentials.createInsecure();
  return credentials.createSsl(tls.caCert, tls.key ?? null, tls.cert ?? null);
}

/** TLS with a certificate and key; with a CA as well, client certificates signed by it are required (mTLS). */
export function serverCredentials(
  tls: Pick<TlsMaterial, 'caCert' | 'cert' | 'key'> | undefined,
): ServerCredentials {
  if (!tls?.cert || !tls.key) return ServerCredentials.createInsecure();
  return ServerCredentials.createSsl(
    tls.caCert ?? null,
    [{ cert_chain: tls.cert, private_key: tls.key }],
    !!tls.caCert,
  );
}
