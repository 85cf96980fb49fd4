// What the Node.js peers share, written the way a Node.js developer would
// write this service: jose JWE (dir + A256GCM) session cookies, the AWS SDK
// for JavaScript v3 for the table, JSON answers for API Gateway v2.
// Same cookies, table records and answers as the Rust functions in meaning
// (not byte for byte: the cookie format is jose's own).

import crypto from 'node:crypto';

import { BatchGetItemCommand, DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { EncryptJWT, base64url, jwtDecrypt } from 'jose';

export const env = (name, fallback) => {
  const v = process.env[name];
  if (v === undefined || v === '') {
    if (fallback === undefined) throw new Error(`${name} is required`);
    return fallback;
  }
  return v;
};

export const TABLE = env('TABLE_NAME');
export const IDLE_SECS = Number(env('SESSION_IDLE_TIMEOUT_SECS', '1800'));
export const ABSOLUTE_SECS = Number(env('SESSION_ABSOLUTE_TIMEOUT_SECS', '28800'));
const KEY = base64url.decode(env('SESSION_KEY')); // 32 random bytes, base64url
if (KEY.length !== 32) throw new Error('SESSION_KEY must be 32 bytes');

export const ddb = new DynamoDBClient({ maxAttempts: 2 });

export const COOKIE = {
  session: '__Host-session',
  tokens: '__Secure-session-tokens',
  refresh: '__Secure-session-refresh',
  login: '__Host-login',
};

export const now = () => Math.floor(Date.now() / 1000);
export const hash = (v) => crypto.createHash('sha256').update(v).digest('base64url');
export const randomToken = () => crypto.randomBytes(32).toString('base64url');

/** Cookies of an API Gateway v2 event, by name. */
export function cookiesOf(event) {
  const out = {};
  for (const c of event.cookies ?? []) {
    const i = c.indexOf('=');
    if (i > 0) out[c.slice(0, i).trim()] = c.slice(i + 1).trim();
  }
  return out;
}

/** Seals a value into a JWE (dir + A256GCM) that expires with the session. */
export function seal(payload, expiresAt) {
  return new EncryptJWT(payload)
    .setProtectedHeader({ alg: 'dir', enc: 'A256GCM' })
    .setExpirationTime(expiresAt)
    .encrypt(KEY);
}

/** Opens a JWE sealed by `seal`; throws when it is forged or expired. */
export async function open(jwe) {
  const { payload } = await jwtDecrypt(jwe, KEY);
  return payload;
}

export function setCookie(name, value, maxAge, path = '/') {
  return `${name}=${value}; Path=${path}; Max-Age=${maxAge}; Secure; HttpOnly; SameSite=Lax`;
}

const HEADERS = {
  'cache-control': 'no-store',
  pragma: 'no-cache',
  'strict-transport-security': 'max-age=63072000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'x-frame-options': 'DENY',
  vary: 'Origin',
};

export function json(statusCode, body, cookies = []) {
  return {
    statusCode,
    headers: { ...HEADERS, 'content-type': 'application/json' },
    cookies,
    body: JSON.stringify(body),
    isBase64Encoded: false,
  };
}

export function redirect(location, cookies = []) {
  return { statusCode: 302, headers: { ...HEADERS, location }, cookies, body: '', isBase64Encoded: false };
}

export const error = (statusCode, code, description) => json(statusCode, { error: code, error_description: description });

/** Per-IP fixed-window counter: one UpdateItem ADD. Returns true when over the limit. */
export async function limited(kind, limit, ip, t) {
  const window = 60;
  const index = Math.floor(t / window);
  const out = await ddb.send(new UpdateItemCommand({
    TableName: TABLE,
    Key: { pk: { S: `rate#${kind}#${ip}#${index}` } },
    UpdateExpression: 'ADD #n :one SET #exp = if_not_exists(#exp, :exp)',
    ExpressionAttributeNames: { '#n': 'n', '#exp': 'expires_at' },
    ExpressionAttributeValues: { ':one': { N: '1' }, ':exp': { N: String((index + 1) * window) } },
    ReturnValues: 'UPDATED_NEW',
  }));
  return Number(out.Attributes.n.N) > limit;
}

/** Whether a revocation record covers this session (one BatchGetItem). */
export async function revoked(marker, tokens, t) {
  const keys = [`revoked#${marker.sid}`, `revoked-sub#${hash(tokens.user.sub)}`];
  if (tokens.idp_sid) keys.push(`revoked-sid#${hash(tokens.idp_sid)}`);
  const out = await ddb.send(new BatchGetItemCommand({
    RequestItems: { [TABLE]: { Keys: keys.map((k) => ({ pk: { S: k } })), ConsistentRead: true } },
  }));
  if (out.UnprocessedKeys?.[TABLE]?.Keys?.length) throw new Error('batch read incomplete');
  return (out.Responses?.[TABLE] ?? []).some((item) => {
    if (Number(item.expires_at?.N ?? 0) <= t) return false;
    const pk = item.pk.S;
    return pk.startsWith('revoked-sub#') ? marker.created_at <= Number(item.data?.S) : true;
  });
}
