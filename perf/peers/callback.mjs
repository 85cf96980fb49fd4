// Node.js peer of the Rust `callback` function (GET /auth/callback): checks
// the browser binding cookie, counts the request and consumes the login
// transaction in one concurrent round trip, exchanges the code and validates
// the ID token with openid-client, seals the session into three cookies.

import { DeleteItemCommand } from '@aws-sdk/client-dynamodb';

import {
  ABSOLUTE_SECS, COOKIE, TABLE, cookiesOf, ddb, env, error, hash, limited, now, open, randomToken, redirect, seal, setCookie,
} from './common.mjs';
import { REDIRECT_URI, client, config } from './oidc.mjs';

const LIMIT = Number(env('RATE_LIMIT_CALLBACK_PER_WINDOW', '60'));

async function take(state, t) {
  try {
    const out = await ddb.send(new DeleteItemCommand({
      TableName: TABLE,
      Key: { pk: { S: `login#${hash(state)}` } },
      ConditionExpression: 'attribute_exists(pk) AND expires_at > :now',
      ExpressionAttributeValues: { ':now': { N: String(t) } },
      ReturnValues: 'ALL_OLD',
    }));
    return JSON.parse(out.Attributes.data.S);
  } catch (err) {
    if (err.name === 'ConditionalCheckFailedException') return null;
    throw err;
  }
}

export async function handler(event) {
  const t = now();
  const q = event.queryStringParameters ?? {};
  const ip = event.requestContext.http.sourceIp;
  const state = q.state;
  if (!state || state.length > 2048) return error(400, 'invalid_request', 'state');
  // Login CSRF defence: this browser must have started this login.
  const cookies = cookiesOf(event);
  let pending;
  try {
    pending = (await open(cookies[COOKIE.login] ?? '')).states ?? [];
  } catch {
    pending = [];
  }
  if (!pending.includes(state)) return error(400, 'invalid_request', 'browser_binding');

  const [over, tx] = await Promise.all([limited('callback', LIMIT, ip, t), take(state, t)]);
  if (over) return error(429, 'temporarily_unavailable', 'slow down');
  if (!tx) return error(400, 'invalid_request', 'unknown_or_used_state');

  const currentUrl = new URL(REDIRECT_URI);
  currentUrl.search = event.rawQueryString;
  let tokens;
  try {
    tokens = await client.authorizationCodeGrant(config, currentUrl, {
      pkceCodeVerifier: tx.verifier,
      expectedState: state,
      expectedNonce: tx.nonce,
      idTokenExpected: true,
    });
  } catch (err) {
    console.log(JSON.stringify({ level: 'INFO', target: 'audit', event: 'login_failed', reason: err.code ?? err.name }));
    return error(400, 'access_denied', 'login failed');
  }
  const claims = tokens.claims();
  const sid = randomToken();
  const expiresAt = t + ABSOLUTE_SECS;
  const user = {
    sub: claims.sub,
    name: claims.name,
    email: claims.email,
    preferred_username: claims.preferred_username,
    groups: claims.groups,
  };
  const [marker, sealedTokens, refresh, binding] = await Promise.all([
    seal({ sid, created_at: t, last_seen: t, expires_at: expiresAt }, expiresAt),
    seal({
      sid,
      user,
      idp_sid: claims.sid,
      access_token: tokens.access_token,
      access_expires_at: t + (tokens.expiresIn() ?? 0),
      id_token: tokens.id_token,
    }, expiresAt),
    seal({ sid, refresh_token: tokens.refresh_token }, expiresAt),
    seal({ states: pending.filter((s) => s !== state) }, t + 600),
  ]);
  console.log(JSON.stringify({
    level: 'INFO', target: 'audit', event: 'login_succeeded', sub: claims.sub, endpoint: 'callback', client_ip: ip,
  }));
  return redirect(tx.return_to, [
    setCookie(COOKIE.session, marker, ABSOLUTE_SECS),
    setCookie(COOKIE.tokens, sealedTokens, ABSOLUTE_SECS, '/auth'),
    setCookie(COOKIE.refresh, refresh, ABSOLUTE_SECS, '/auth'),
    setCookie(COOKIE.login, binding, 600, '/'),
  ]);
}
