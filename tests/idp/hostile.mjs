#!/usr/bin/env node
// A small programmable OpenID provider that misbehaves on request: the test
// double behind the resilience tests (tests/integration/hostile.rs and
// faults.rs). Plain node:http and node:crypto, no oidc-provider: it signs
// whatever the current scenario asks for, including tokens no real provider
// would issue. See tests/idp/hostile.md.
//
// One process serves many independent providers ("tenants"), one per test:
// each has its own issuer `{base}/t/{id}`, client, codes, refresh tokens,
// scenario and counters, so tests run in parallel without a process each.
//
// Loopback only, plain http, no authentication on the admin endpoints.

import crypto from 'node:crypto';
import http from 'node:http';

const PORT = Number(process.env.HOSTILE_IDP_PORT ?? 0);
const HOST = '127.0.0.1';

// ------------------------------------------------------------------ keys ---

// A small pool of RSA keys, generated once per process; tenants share the
// key material (their issuers differ, so no token is valid at two tenants).
function rsaKey(name) {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const { kty, n, e } = publicKey.export({ format: 'jwk' });
  return {
    name,
    privateKey,
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }),
    jwk: { kty, n, e, use: 'sig', alg: 'RS256' },
  };
}
const KEYS = {
  primary: rsaKey('primary'),
  rotated: rsaKey('rotated'),
  attacker: rsaKey('attacker'),
};

// JWKS entries no client can use: each must be skipped, not fail the set.
const GARBAGE_KEYS = [
  { kty: 'RSA', kid: 'garbage-rsa', use: 'sig', alg: 'RS256', n: '%%% not base64 %%%', e: 'AQAB' },
  { kty: 'EC', kid: 'garbage-ec', crv: 'P-256' },
  { kty: 'made-up', kid: 'garbage-kty' },
  'not even an object',
];

// --------------------------------------------------------------- helpers ---

const b64u = (data) => Buffer.from(data).toString('base64url');
const random = (bytes = 24) => crypto.randomBytes(bytes).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Shallow merge where `null` deletes a member.
function merge(base, overrides) {
  const out = { ...base };
  for (const [k, v] of Object.entries(overrides ?? {})) {
    if (v === null) delete out[k];
    else out[k] = v;
  }
  return out;
}

function send(res, status, body, type = 'application/json') {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, {
    'content-type': type,
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

function redirect(res, location) {
  res.writeHead(302, { location, 'cache-control': 'no-store', 'content-length': 0 });
  res.end();
}

async function readBody(req, limit = 4 * 1024 * 1024) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) throw new Error('body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

// --------------------------------------------------------------- scenarios ---

// Named scenarios: shorthands for the fields documented in hostile.md. A
// scenario is set with `POST {issuer}/__scenario` as `{"name": ..., ...}`;
// explicit fields override the named ones.
const SCENARIOS = {
  good: {},
  // ID token claims
  wrong_iss: { claims: { iss: 'https://evil.example/' } },
  missing_sub: { claims: { sub: null } },
  empty_sub: { claims: { sub: '' } },
  wrong_aud: { claims: { aud: 'someone-else' } },
  missing_aud: { claims: { aud: null } },
  multiple_aud_without_azp: { claims: { aud: ['$client_id', 'another-client'] } },
  multiple_aud_with_azp: { claims: { aud: ['$client_id', 'another-client'], azp: '$client_id' } },
  wrong_azp: { claims: { azp: 'another-client' } },
  missing_iat: { claims: { iat: null } },
  missing_exp: { claims: { exp: null } },
  expired: { time_offsets: { exp: -600, iat: -900, auth_time: -900 } },
  issued_in_the_future: { time_offsets: { iat: 3600, exp: 7200 } },
  wrong_nonce: { claims: { nonce: 'not-the-nonce-we-were-sent' } },
  missing_nonce: { claims: { nonce: null } },
  replayed_id_token: { replay_id_token: true },
  // signatures and keys
  alg_none: { sign: 'none' },
  bad_signature: { sign: 'bad_signature' },
  hs256_public_key: { sign: 'hs256_public_key' },
  unknown_signer: { sign: 'attacker' },
  header_jwk: { sign: 'attacker', header: { jwk: '$attacker_jwk' } },
  header_jku: { sign: 'attacker', header: { jku: '$issuer/attacker/jwks' } },
  header_x5u: { sign: 'attacker', header: { x5u: '$issuer/attacker/x5u' } },
  rotated_key: { sign: 'rotated', jwks: ['rotated', 'primary'] },
  kid_absent_single_jwks: { header: { kid: null }, jwks: ['primary_no_kid'] },
  kid_absent_multiple_jwks: { header: { kid: null }, jwks: ['primary_no_kid', 'rotated_no_kid'] },
  unparseable_extra_key: { jwks: ['garbage', 'primary'] },
  // token response
  token_type_mac: { token_response: { token_type: 'mac' } },
  token_type_dpop: { token_response: { token_type: 'DPoP' } },
  no_id_token: { token_response: { id_token: null } },
  garbage_id_token: { token_response: { id_token: 'this.is-not-a.jwt' } },
  token_500: { token_status: 500, token_body: '{"error":"server_error"}' },
  token_garbage: { token_body: '<html>definitely not JSON</html>', token_content_type: 'text/html' },
  token_slow: { token_delay_ms: 8000 },
  invalid_grant: { token_status: 400, token_body: '{"error":"invalid_grant"}' },
  // authorization response (RFC 9207)
  authorize_wrong_iss: { authorize_iss: 'https://evil.example/' },
  authorize_no_iss: { authorize_iss: null },
  // discovery and JWKS
  discovery_issuer_mismatch: { discovery: { issuer: 'https://evil.example/' } },
  discovery_without_s256: { discovery: { code_challenge_methods_supported: ['plain'] } },
  discovery_no_pkce_methods: { discovery: { code_challenge_methods_supported: null } },
  discovery_500: { discovery_status: 500, discovery_body: 'oops' },
  discovery_garbage: { discovery_body: '{"issuer": ' },
  discovery_slow: { discovery_delay_ms: 8000 },
  jwks_500: { jwks_status: 500, jwks_body: 'oops' },
  jwks_garbage: { jwks_body: 'not json' },
};

function resolveScenario(spec) {
  const named = spec.name ? SCENARIOS[spec.name] : {};
  if (named === undefined) throw new Error(`unknown scenario ${spec.name}`);
  return { ...named, ...spec };
}

// Placeholders a scenario may use in strings: `$client_id`, `$issuer`, `$attacker_jwk`.
function substitute(value, tenant) {
  if (value === '$attacker_jwk') return { ...KEYS.attacker.jwk, kid: `${tenant.id}-attacker` };
  if (typeof value === 'string') {
    return value.replaceAll('$client_id', tenant.clientId).replaceAll('$issuer', tenant.issuer);
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, tenant));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, tenant)]));
  }
  return value;
}

// ----------------------------------------------------------------- tenants ---

const tenants = new Map();

function newTenant({ base, client_id: clientId, client_secret: clientSecret }) {
  const id = random(9);
  const issuer = `${(base ?? `http://${HOST}:${server.address().port}`).replace(/\/$/, '')}/t/${id}`;
  const tenant = {
    id,
    issuer,
    clientId: clientId ?? `hostile-${random(6)}`,
    clientSecret: clientSecret ?? random(),
    scenario: {},
    codes: new Map(),
    refreshTokens: new Map(),
    lastIdToken: null,
    stats: {
      discovery: 0,
      jwks: 0,
      authorize: 0,
      authorization_code_grants: 0,
      refresh_token_grants: 0,
      token_errors: 0,
      revocations: 0,
      attacker_fetches: 0,
    },
  };
  tenants.set(id, tenant);
  return tenant;
}

function kidOf(tenant, name) {
  return `${tenant.id}-${name}`;
}

function publicJwk(tenant, name) {
  if (name === 'garbage') return GARBAGE_KEYS;
  const noKid = name.endsWith('_no_kid');
  const key = KEYS[noKid ? name.slice(0, -'_no_kid'.length) : name];
  if (!key) throw new Error(`unknown key ${name}`);
  return noKid ? { ...key.jwk } : { ...key.jwk, kid: kidOf(tenant, key.name) };
}

function jwks(tenant) {
  const names = tenant.scenario.jwks ?? ['primary'];
  return { keys: names.flatMap((n) => publicJwk(tenant, n)) };
}

function discovery(tenant) {
  const i = tenant.issuer;
  const doc = {
    issuer: i,
    authorization_endpoint: `${i}/authorize`,
    token_endpoint: `${i}/token`,
    jwks_uri: `${i}/jwks`,
    revocation_endpoint: `${i}/revoke`,
    end_session_endpoint: `${i}/end-session`,
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: ['authorization_code', 'refresh_token'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    code_challenge_methods_supported: ['S256'],
    authorization_response_iss_parameter_supported: true,
    scopes_supported: ['openid', 'profile', 'email', 'offline_access', 'groups'],
    claims_supported: ['sub', 'iss', 'aud', 'exp', 'iat', 'nonce', 'name', 'email', 'groups'],
  };
  return merge(doc, substitute(tenant.scenario.discovery, tenant));
}

// Builds and signs an ID token for a grant as the scenario says.
function idToken(tenant, grant, nonce) {
  const sc = tenant.scenario;
  const t = now();
  let claims = {
    iss: tenant.issuer,
    sub: grant.sub,
    aud: tenant.clientId,
    exp: t + 300,
    iat: t,
    auth_time: grant.authTime,
    sid: grant.sid,
    name: `Hostile ${grant.sub}`,
    preferred_username: grant.sub,
    email: `${grant.sub}@hostile.example`,
    email_verified: true,
    groups: ['users'],
  };
  if (nonce !== undefined) claims.nonce = nonce;
  claims = merge(claims, substitute(sc.claims, tenant));
  for (const [claim, offset] of Object.entries(sc.time_offsets ?? {})) claims[claim] = t + offset;

  return signJwt(tenant, claims, { sign: sc.sign, header: sc.header, typ: 'JWT' });
}

// Signs claims as `sign` says (see the scenario field of that name).
function signJwt(tenant, claims, { sign, header: overrides, typ }) {
  const how = sign ?? 'primary';
  const signer = KEYS[how === 'rotated' || how === 'attacker' ? how : 'primary'];
  let header = { alg: 'RS256', typ, kid: kidOf(tenant, signer.name) };
  if (how === 'none') header = { alg: 'none', typ };
  if (how === 'hs256_public_key') header = { alg: 'HS256', typ, kid: kidOf(tenant, 'primary') };
  header = merge(header, substitute(overrides, tenant));

  // A string is the payload as it is (JSON numbers beyond 2^53 survive).
  const payload = typeof claims === 'string' ? claims : JSON.stringify(claims);
  const input = `${b64u(JSON.stringify(header))}.${b64u(payload)}`;
  switch (how) {
    case 'none':
      return `${input}.`;
    case 'hs256_public_key':
      // The classic confusion attack: HMAC keyed with the public key's PEM.
      return `${input}.${b64u(crypto.createHmac('sha256', KEYS.primary.publicPem).update(input).digest())}`;
    case 'bad_signature': {
      const sig = crypto.sign('sha256', Buffer.from(input), signer.privateKey);
      sig[sig.length - 1] ^= 0x01;
      return `${input}.${b64u(sig)}`;
    }
    default:
      return `${input}.${b64u(crypto.sign('sha256', Buffer.from(input), signer.privateKey))}`;
  }
}

function clientAuth(tenant, req, form) {
  const header = req.headers.authorization ?? '';
  if (header.startsWith('Basic ')) {
    const decoded = Buffer.from(header.slice(6), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    const id = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, ' '));
    const secret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, ' '));
    return id === tenant.clientId && secret === tenant.clientSecret;
  }
  return form.get('client_id') === tenant.clientId && form.get('client_secret') === tenant.clientSecret;
}

function tokenError(tenant, res, status, error) {
  tenant.stats.token_errors += 1;
  send(res, status, { error });
}

function issueTokens(tenant, grant, { nonce, rotate }) {
  const sc = tenant.scenario;
  let id = idToken(tenant, grant, nonce);
  if (sc.replay_id_token && tenant.lastIdToken) id = tenant.lastIdToken;
  if (nonce !== undefined) tenant.lastIdToken = id;
  let refresh;
  if (rotate) {
    refresh = random();
    tenant.refreshTokens.set(refresh, { grant, used: false });
  }
  const body = {
    access_token: random(),
    token_type: 'Bearer',
    expires_in: 300,
    id_token: id,
    scope: grant.scope,
    ...(refresh ? { refresh_token: refresh } : {}),
  };
  return merge(body, substitute(sc.token_response, tenant));
}

// ----------------------------------------------------------------- routes ---

async function tenantRoute(tenant, rest, req, res, url) {
  const sc = tenant.scenario;
  if (rest === '/__scenario' && req.method === 'POST') {
    const spec = JSON.parse((await readBody(req)) || '{}');
    tenant.scenario = resolveScenario(spec);
    return send(res, 200, { ok: true, scenario: tenant.scenario });
  }
  if (rest === '/__stats') return send(res, 200, tenant.stats);
  if (rest === '/__sign' && req.method === 'POST') {
    // Any JWT this provider could sign, e.g. a back-channel logout token:
    // `{"claims": {...}, "time_offsets": {...}, "sign": ..., "header": {...}}`.
    const spec = JSON.parse((await readBody(req)) || '{}');
    let claims = substitute(spec.claims ?? {}, tenant);
    for (const [claim, offset] of Object.entries(spec.time_offsets ?? {})) claims[claim] = now() + offset;
    if (typeof spec.payload === 'string') claims = spec.payload;
    const jwt = signJwt(tenant, claims, { sign: spec.sign, header: spec.header, typ: spec.typ ?? 'logout+jwt' });
    return send(res, 200, { jwt });
  }

  if (rest === '/.well-known/openid-configuration') {
    tenant.stats.discovery += 1;
    if (sc.discovery_delay_ms) await sleep(sc.discovery_delay_ms);
    if (sc.discovery_body !== undefined) return send(res, sc.discovery_status ?? 200, sc.discovery_body);
    return send(res, sc.discovery_status ?? 200, discovery(tenant));
  }
  if (rest === '/jwks') {
    tenant.stats.jwks += 1;
    if (sc.jwks_delay_ms) await sleep(sc.jwks_delay_ms);
    if (sc.jwks_body !== undefined) return send(res, sc.jwks_status ?? 200, sc.jwks_body);
    return send(res, sc.jwks_status ?? 200, jwks(tenant), 'application/jwk-set+json');
  }
  if (rest === '/attacker/jwks' || rest === '/attacker/x5u') {
    // A relying party that follows `jku`/`x5u` from a token header lands here.
    tenant.stats.attacker_fetches += 1;
    return send(res, 200, { keys: [{ ...KEYS.attacker.jwk, kid: kidOf(tenant, 'attacker') }] });
  }

  if (rest === '/authorize' && req.method === 'GET') {
    tenant.stats.authorize += 1;
    const q = url.searchParams;
    const redirectUri = q.get('redirect_uri');
    if (!redirectUri || q.get('client_id') !== tenant.clientId) {
      return send(res, 400, { error: 'invalid_request', error_description: 'client_id or redirect_uri' });
    }
    const back = new URL(redirectUri);
    const state = q.get('state');
    if (state !== null) back.searchParams.set('state', state);
    const iss = 'authorize_iss' in sc ? sc.authorize_iss : tenant.issuer;
    if (iss !== null) back.searchParams.set('iss', substitute(iss, tenant));
    const problems = [];
    if (q.get('response_type') !== 'code') problems.push('response_type');
    if (q.get('code_challenge_method') !== 'S256' || !q.get('code_challenge')) problems.push('pkce');
    if (!(q.get('scope') ?? '').split(' ').includes('openid')) problems.push('scope');
    if (sc.authorize_error || problems.length) {
      back.searchParams.set('error', sc.authorize_error ?? 'invalid_request');
      return redirect(res, back.toString());
    }
    const code = random();
    tenant.codes.set(code, {
      redirectUri,
      challenge: q.get('code_challenge'),
      nonce: q.get('nonce') ?? undefined,
      expiresAt: now() + 60,
      grant: {
        // `login_hint` picks the user, so concurrency tests get distinct subjects.
        sub: q.get('login_hint') || 'hostile-user',
        sid: random(9),
        authTime: now(),
        scope: q.get('scope'),
        revoked: false,
      },
    });
    back.searchParams.set('code', code);
    return redirect(res, back.toString());
  }

  if (rest === '/token' && req.method === 'POST') {
    const form = new URLSearchParams(await readBody(req));
    if (sc.token_delay_ms) await sleep(sc.token_delay_ms);
    if (res.destroyed || req.socket.destroyed) return undefined;
    if (!clientAuth(tenant, req, form)) return tokenError(tenant, res, 401, 'invalid_client');
    if (sc.token_body !== undefined) {
      tenant.stats.token_errors += (sc.token_status ?? 200) >= 400 ? 1 : 0;
      return send(res, sc.token_status ?? 200, sc.token_body, sc.token_content_type ?? 'application/json');
    }
    const grantType = form.get('grant_type');
    if (grantType === 'authorization_code') {
      const code = form.get('code');
      const entry = tenant.codes.get(code);
      if (!entry) return tokenError(tenant, res, 400, 'invalid_grant');
      tenant.codes.delete(code);
      const verifier = form.get('code_verifier') ?? '';
      const challenge = b64u(crypto.createHash('sha256').update(verifier).digest());
      if (entry.expiresAt <= now() || entry.redirectUri !== form.get('redirect_uri') || challenge !== entry.challenge) {
        return tokenError(tenant, res, 400, 'invalid_grant');
      }
      tenant.stats.authorization_code_grants += 1;
      return send(res, 200, issueTokens(tenant, entry.grant, { nonce: entry.nonce, rotate: true }));
    }
    if (grantType === 'refresh_token') {
      const token = form.get('refresh_token');
      const entry = tenant.refreshTokens.get(token);
      if (!entry || entry.grant.revoked) return tokenError(tenant, res, 400, 'invalid_grant');
      if (entry.used) {
        // A rotated-out token presented again: treat as theft, end the grant.
        entry.grant.revoked = true;
        return tokenError(tenant, res, 400, 'invalid_grant');
      }
      const rotate = sc.rotate_refresh ?? true;
      if (rotate) entry.used = true;
      tenant.stats.refresh_token_grants += 1;
      return send(res, 200, issueTokens(tenant, entry.grant, { nonce: undefined, rotate }));
    }
    return tokenError(tenant, res, 400, 'unsupported_grant_type');
  }

  if (rest === '/revoke' && req.method === 'POST') {
    const form = new URLSearchParams(await readBody(req));
    if (!clientAuth(tenant, req, form)) return send(res, 401, { error: 'invalid_client' });
    if (sc.revocation_status) return send(res, sc.revocation_status, { error: 'server_error' });
    const entry = tenant.refreshTokens.get(form.get('token'));
    if (entry) entry.grant.revoked = true;
    tenant.stats.revocations += 1;
    return send(res, 200, '');
  }
  if (rest === '/end-session') return send(res, 200, '<p>signed out</p>', 'text/html');
  return send(res, 404, { error: 'not_found' });
}

async function route(req, res) {
  const url = new URL(req.url, `http://${req.headers.host ?? HOST}`);
  if (url.pathname === '/__health') return send(res, 200, { ok: true });
  if (url.pathname === '/__tenant' && req.method === 'POST') {
    const tenant = newTenant(JSON.parse((await readBody(req)) || '{}'));
    return send(res, 201, {
      issuer: tenant.issuer,
      client_id: tenant.clientId,
      client_secret: tenant.clientSecret,
    });
  }
  const match = /^\/t\/([A-Za-z0-9_-]+)(\/.*)?$/.exec(url.pathname);
  const tenant = match && tenants.get(match[1]);
  if (!tenant) return send(res, 404, { error: 'unknown_tenant' });
  return tenantRoute(tenant, match[2] ?? '/', req, res, url);
}

const server = http.createServer((req, res) => {
  route(req, res).catch((err) => {
    process.stderr.write(`hostile idp: ${err.message}\n`);
    if (!res.headersSent) send(res, 500, { error: 'server_error' });
    else res.destroy();
  });
});
server.keepAliveTimeout = 30_000;

server.listen(PORT, HOST, () => {
  process.stdout.write(`hostile idp ready on http://${HOST}:${server.address().port}\n`);
});

function shutdown() {
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
