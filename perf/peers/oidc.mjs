// The provider client of the peers: openid-client v6, discovered once per
// cold start (top-level await), like the Rust functions' prefetch.

import * as client from 'openid-client';

import { env } from './common.mjs';

export const REDIRECT_URI = env('OIDC_REDIRECT_URI');
export const SCOPES = env('OIDC_SCOPES', 'openid profile email offline_access');
const issuer = new URL(env('OIDC_ISSUER'));

export const config = await client.discovery(
  issuer,
  env('OIDC_CLIENT_ID'),
  undefined,
  client.ClientSecretBasic(env('OIDC_CLIENT_SECRET')),
  // The local test provider speaks plain http on loopback.
  { execute: issuer.protocol === 'http:' ? [client.allowInsecureRequests] : [], timeout: 5 },
);
// openid-client skips the ID token signature when the token came over TLS
// from the token endpoint; the Rust functions check it, so the peer does too
// (JWKS fetched once, then cached).
client.enableNonRepudiationChecks(config);

export { client };
