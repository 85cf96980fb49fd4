// Node.js peer of the Rust `authorize` function (GET /auth/login), needed to
// start logins for the callback peer: a PKCE transaction in the table (keyed
// by a hash of `state`), the state in a sealed browser binding cookie, a 302
// to the provider. The benchmark runs it in its own process, unmeasured.

import { PutItemCommand } from '@aws-sdk/client-dynamodb';

import { COOKIE, TABLE, ddb, env, error, hash, limited, now, redirect, seal, setCookie } from './common.mjs';
import { REDIRECT_URI, SCOPES, client, config } from './oidc.mjs';

const LIMIT = Number(env('RATE_LIMIT_LOGIN_PER_WINDOW', '60'));
const TX_SECS = 600;

export async function handler(event) {
  const t = now();
  const ip = event.requestContext.http.sourceIp;
  const returnTo = event.queryStringParameters?.return_to ?? '/';
  if (!returnTo.startsWith('/') || returnTo.startsWith('//')) return error(400, 'invalid_request', 'return_to');
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT_URI,
    scope: SCOPES,
    code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const [over] = await Promise.all([
    limited('login', LIMIT, ip, t),
    ddb.send(new PutItemCommand({
      TableName: TABLE,
      Item: {
        pk: { S: `login#${hash(state)}` },
        data: { S: JSON.stringify({ verifier, nonce, return_to: new URL(returnTo, REDIRECT_URI).href }) },
        expires_at: { N: String(t + TX_SECS) },
      },
    })),
  ]);
  if (over) return error(429, 'temporarily_unavailable', 'slow down');
  return redirect(url.href, [setCookie(COOKIE.login, await seal({ states: [state] }, t + TX_SECS), TX_SECS)]);
}
