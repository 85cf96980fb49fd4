// Self-check of the Node side of the local/test stack:
//   node --test tests/idp/
// Starts DynamoDB Local (scripts/dynamodb-local.mjs) and the test IdP
// (tests/idp/server.mjs) on free loopback ports and drives them the way the
// Rust tests will: dynamic registration, a browserless login with PKCE, code
// exchange, refresh with and without rotation, revocation, RP-initiated and
// back-channel logout, and the /__test admin API.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import {
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
} from '@aws-sdk/client-dynamodb';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

// ------------------------------------------------------------- helpers ---

async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// Spawns `node script args` and resolves once stdout prints a line matching
// `ready`. stderr is kept for failure messages.
function startNode(script, args, env, ready, timeoutMs = 60_000) {
  const child = spawn(process.execPath, [path.join(ROOT, script), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));

  const readyLine = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} not ready in ${timeoutMs} ms\n${stderr}`)), timeoutMs);
    child.stdout.on('data', (d) => {
      stdout += d;
      const line = stdout.split('\n').find((l) => ready.test(l));
      if (line) {
        clearTimeout(timer);
        resolve(line);
      }
    });
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited early (${code ?? signal})\n${stderr}`));
    });
  });

  return {
    child,
    readyLine,
    stdout: () => stdout,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
}

const b64url = (buf) => Buffer.from(buf).toString('base64url');

function decodeJwt(jwt) {
  const [header, payload] = jwt.split('.');
  return {
    header: JSON.parse(Buffer.from(header, 'base64url')),
    payload: JSON.parse(Buffer.from(payload, 'base64url')),
  };
}

function verifyJwtSignature(jwt, jwks) {
  const [h, p, s] = jwt.split('.');
  const { header } = decodeJwt(jwt);
  assert.equal(header.alg, 'RS256');
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  assert.ok(jwk, 'signing key is in the JWKS');
  const key = crypto.createPublicKey({ key: jwk, format: 'jwk' });
  return crypto.verify('RSA-SHA256', Buffer.from(`${h}.${p}`), key, Buffer.from(s, 'base64url'));
}

// A minimal cookie jar with path matching (enough for one host).
class CookieJar {
  #cookies = new Map(); // `${name} ${path}` -> { name, value, path }

  store(response) {
    for (const header of response.headers.getSetCookie()) {
      const [pair, ...attrs] = header.split(';').map((s) => s.trim());
      const i = pair.indexOf('=');
      const name = pair.slice(0, i);
      const value = pair.slice(i + 1);
      let cookiePath = '/';
      let expired = value === '';
      for (const attr of attrs) {
        const [k, v = ''] = attr.split('=');
        if (k.toLowerCase() === 'path') cookiePath = v;
        if (k.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
        if (k.toLowerCase() === 'expires' && Date.parse(v) <= Date.now()) expired = true;
      }
      const key = `${name} ${cookiePath}`;
      if (expired) this.#cookies.delete(key);
      else this.#cookies.set(key, { name, value, path: cookiePath });
    }
  }

  header(url) {
    const { pathname } = new URL(url);
    return [...this.#cookies.values()]
      .filter((c) => pathname === c.path || pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }
}

async function request(url, { jar, method = 'GET', headers = {}, body } = {}) {
  const cookie = jar?.header(url);
  const res = await fetch(url, {
    method,
    redirect: 'manual',
    headers: { ...(cookie ? { cookie } : {}), ...headers },
    body,
  });
  jar?.store(res);
  return res;
}

const basicAuth = (id, secret) => `Basic ${Buffer.from(
  `${encodeURIComponent(id)}:${encodeURIComponent(secret)}`,
).toString('base64')}`;

// ------------------------------------------------------- DynamoDB Local ---

function javaProcessesOnPort(port) {
  if (!fs.existsSync('/proc')) return [];
  const found = [];
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      const i = args.indexOf('-port');
      if (args.some((a) => a.endsWith('DynamoDBLocal.jar')) && args[i + 1] === String(port)) found.push(pid);
    } catch {
      // process gone meanwhile
    }
  }
  return found;
}

describe('scripts/dynamodb-local.mjs', { timeout: 120_000 }, () => {
  test('starts, creates the table with TTL, stops without leaving java behind', async () => {
    const port = await freePort();
    const ddb = startNode(
      'scripts/dynamodb-local.mjs',
      ['--port', String(port), '--create-table', 'smoke', '--quiet'],
      {},
      /^dynamodb-local ready on /,
    );
    try {
      assert.equal(await ddb.readyLine, `dynamodb-local ready on http://127.0.0.1:${port}`);
      assert.equal(ddb.stdout(), `dynamodb-local ready on http://127.0.0.1:${port}\n`, 'stdout is only the ready line');

      // Other dummy credentials and region: -sharedDb makes the table visible anyway.
      const client = new DynamoDBClient({
        endpoint: `http://127.0.0.1:${port}`,
        region: 'eu-west-1',
        credentials: { accessKeyId: 'someoneelse', secretAccessKey: 'x' },
      });
      const { Table } = await client.send(new DescribeTableCommand({ TableName: 'smoke' }));
      assert.equal(Table.TableStatus, 'ACTIVE');
      assert.deepEqual(Table.KeySchema, [{ AttributeName: 'pk', KeyType: 'HASH' }]);
      assert.deepEqual(Table.AttributeDefinitions, [{ AttributeName: 'pk', AttributeType: 'S' }]);
      assert.equal(Table.BillingModeSummary?.BillingMode, 'PAY_PER_REQUEST');
      const { TimeToLiveDescription } = await client.send(new DescribeTimeToLiveCommand({ TableName: 'smoke' }));
      assert.deepEqual(TimeToLiveDescription, { TimeToLiveStatus: 'ENABLED', AttributeName: 'expires_at' });
      client.destroy();
      assert.equal(javaProcessesOnPort(port).length, 1, 'one java child while running');
    } finally {
      const { code } = await ddb.stop();
      assert.equal(code, 0, ddb.stderr());
    }
    assert.deepEqual(javaProcessesOnPort(port), [], 'no orphan java process');
  });
});

// -------------------------------------------------------------- the IdP ---

describe('tests/idp/server.mjs', { timeout: 120_000 }, () => {
  let idp;
  let issuer;
  let meta;
  let jwks;
  let rp; // fake relying party: receives back-channel logout tokens
  let rpPort;
  const logoutTokens = [];

  before(async () => {
    rpPort = await freePort();
    rp = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => { body += d; });
      req.on('end', () => {
        if (req.method === 'POST' && req.url === '/auth/backchannel-logout') {
          logoutTokens.push(new URLSearchParams(body).get('logout_token'));
          res.writeHead(200).end();
        } else {
          res.writeHead(404).end();
        }
      });
    });
    await new Promise((resolve) => rp.listen(rpPort, '127.0.0.1', resolve));

    const port = await freePort();
    issuer = `http://localhost:${port}`;
    const started = Date.now();
    idp = startNode('tests/idp/server.mjs', [], { IDP_PORT: String(port) }, /^idp ready on /);
    assert.equal(await idp.readyLine, `idp ready on ${issuer}`);
    assert.ok(Date.now() - started < 5000, 'IdP starts quickly');
  });

  after(async () => {
    const { code } = await idp.stop();
    if (process.env.IDP_SMOKE_DEBUG) process.stderr.write(idp.stderr());
    assert.equal(code, 0, idp.stderr());
    assert.equal(idp.stdout(), `idp ready on ${issuer}\n`, 'stdout is only the ready line');
    await new Promise((resolve) => rp.close(resolve));
  });

  async function register(extra = {}, host = '127.0.0.1') {
    const body = {
      client_name: 'smoke test',
      application_type: 'web',
      redirect_uris: [`http://${host}:${rpPort}/auth/callback`],
      post_logout_redirect_uris: [`http://${host}:${rpPort}/`],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      ...extra,
    };
    const res = await fetch(meta.registration_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const json = await res.json();
    assert.equal(res.status, 201, JSON.stringify(json));
    assert.ok(json.client_id && json.client_secret);
    return json;
  }

  // Browserless login: returns the callback parameters and the PKCE verifier.
  async function login(client, {
    jar = new CookieJar(),
    user = 'alice',
    password = `${user}-password`,
    expectForm = true,
    scope = 'openid profile email offline_access groups',
    extra = {},
  } = {}) {
    const [redirectUri] = client.redirect_uris;
    const verifier = b64url(crypto.randomBytes(32));
    const state = b64url(crypto.randomBytes(16));
    const nonce = b64url(crypto.randomBytes(16));
    const authUrl = new URL(meta.authorization_endpoint);
    authUrl.search = new URLSearchParams({
      client_id: client.client_id,
      response_type: 'code',
      redirect_uri: redirectUri,
      scope,
      state,
      nonce,
      code_challenge: b64url(crypto.createHash('sha256').update(verifier).digest()),
      code_challenge_method: 'S256',
      ...extra,
    });

    let res = await request(authUrl.href, { jar });
    let url = authUrl.href;
    let sawForm = false;
    for (let hop = 0; hop < 10; hop += 1) {
      if (res.status === 303 || res.status === 302) {
        url = new URL(res.headers.get('location'), url).href;
        if (url.startsWith(redirectUri)) break;
        res = await request(url, { jar });
        continue;
      }
      // The login form: check it, try a wrong password once, then sign in.
      assert.equal(res.status, 200, `unexpected ${res.status} at ${url}`);
      const html = await res.text();
      assert.match(html, /id="login"/);
      assert.match(html, /id="password"/);
      assert.match(html, /<button type="submit">Sign in<\/button>/);
      const action = new URL(/<form method="post" action="([^"]+)"/.exec(html)[1], url).href;
      if (!sawForm) {
        const bad = await request(action, {
          jar,
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ login: user, password: 'wrong' }),
        });
        assert.equal(bad.status, 401);
        assert.match(await bad.text(), /Invalid username or password/);
      }
      sawForm = true;
      res = await request(action, {
        jar,
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ login: user, password }),
      });
      url = action;
    }
    assert.equal(sawForm, expectForm, expectForm ? 'login form shown' : 'no login form with a session');
    assert.ok(url.startsWith(redirectUri), `ended at ${url}`);
    const params = new URL(url).searchParams;
    assert.equal(params.get('state'), state);
    assert.equal(params.get('iss'), meta.issuer, 'RFC 9207 iss in the authorization response');
    assert.ok(params.get('code'));
    return { code: params.get('code'), verifier, nonce, jar, redirectUri };
  }

  async function token(client, params) {
    const res = await fetch(meta.token_endpoint, {
      method: 'POST',
      headers: {
        authorization: basicAuth(client.client_id, client.client_secret),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams(params),
    });
    return { status: res.status, body: await res.json() };
  }

  async function exchange(client, { code, verifier, redirectUri }) {
    return token(client, {
      grant_type: 'authorization_code', code, code_verifier: verifier, redirect_uri: redirectUri,
    });
  }

  const refresh = (client, refreshToken) => token(client, { grant_type: 'refresh_token', refresh_token: refreshToken });

  async function stats(clientId) {
    const res = await fetch(new URL(`/__test/stats?client_id=${encodeURIComponent(clientId)}`, issuer));
    assert.equal(res.status, 200);
    return res.json();
  }

  let clientA; // rotation "always", back-channel logout
  let clientB; // rotation "never", localhost redirect URIs
  let sessionA; // cookie jar with alice's IdP session
  let idTokenA;

  test('health and discovery', async () => {
    const health = await fetch(new URL('/__test/health', issuer));
    assert.equal(health.status, 200);

    const res = await fetch(`${issuer}/.well-known/openid-configuration`);
    assert.equal(res.status, 200);
    meta = await res.json();
    assert.equal(meta.issuer, issuer);
    assert.deepEqual(meta.code_challenge_methods_supported, ['S256']);
    assert.ok(meta.revocation_endpoint);
    assert.ok(meta.end_session_endpoint);
    assert.ok(meta.registration_endpoint);
    assert.equal(meta.backchannel_logout_supported, true);
    assert.equal(meta.backchannel_logout_session_supported, true);
    assert.equal(meta.authorization_response_iss_parameter_supported, true);
    for (const s of ['openid', 'profile', 'email', 'offline_access', 'groups']) {
      assert.ok(meta.scopes_supported.includes(s), s);
    }
    jwks = await (await fetch(meta.jwks_uri)).json();
    assert.equal(jwks.keys[0].kty, 'RSA');
    assert.equal(jwks.keys[0].d, undefined, 'JWKS is public');
  });

  test('dynamic registration with loopback http redirect URIs', async () => {
    clientA = await register({
      backchannel_logout_uri: `http://127.0.0.1:${rpPort}/auth/backchannel-logout`,
      backchannel_logout_session_required: true,
      test_refresh_rotation: 'always',
    });
    assert.equal(clientA.token_endpoint_auth_method, 'client_secret_basic');
    clientB = await register({ test_refresh_rotation: 'never' }, 'localhost');

    const bad = await fetch(meta.registration_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ redirect_uris: ['http://127.0.0.1/cb'], test_refresh_rotation: 'sometimes' }),
    });
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).error, 'invalid_client_metadata');
  });

  test('unregistered redirect_uri is refused without redirecting', async () => {
    const url = new URL(meta.authorization_endpoint);
    url.search = new URLSearchParams({
      client_id: clientA.client_id,
      response_type: 'code',
      redirect_uri: `http://127.0.0.1:${rpPort}/elsewhere`,
      scope: 'openid',
      code_challenge: b64url(crypto.randomBytes(32)),
      code_challenge_method: 'S256',
    });
    const res = await request(url.href);
    assert.equal(res.status, 400);
    assert.equal(res.headers.get('location'), null);
  });

  test('PKCE is required', async () => {
    const url = new URL(meta.authorization_endpoint);
    url.search = new URLSearchParams({
      client_id: clientA.client_id,
      response_type: 'code',
      redirect_uri: clientA.redirect_uris[0],
      scope: 'openid',
      state: 's',
    });
    const res = await request(url.href);
    assert.equal(res.status, 303);
    const location = new URL(res.headers.get('location'));
    assert.equal(location.searchParams.get('error'), 'invalid_request');
  });

  test('login, code exchange, ID token claims, rotation "always"', async () => {
    const flow = await login(clientA);
    sessionA = flow.jar;
    const { status, body } = await exchange(clientA, flow);
    assert.equal(status, 200, JSON.stringify(body));
    assert.ok(body.access_token && body.id_token && body.refresh_token);
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.expires_in, 300);
    assert.ok(body.scope.split(' ').includes('offline_access'));

    assert.ok(verifyJwtSignature(body.id_token, jwks), 'ID token signature');
    const { payload } = decodeJwt(body.id_token);
    assert.equal(payload.iss, issuer);
    assert.equal(payload.aud, clientA.client_id);
    assert.equal(payload.sub, 'user-alice');
    assert.equal(payload.nonce, flow.nonce);
    assert.equal(payload.name, 'Alice Example');
    assert.equal(payload.email, 'alice@example.com');
    assert.equal(payload.email_verified, true);
    assert.equal(payload.preferred_username, 'alice');
    assert.deepEqual(payload.groups, ['staff', 'users']);
    assert.ok(payload.sid);
    assert.equal(payload.exp - payload.iat, 300);

    const first = await refresh(clientA, body.refresh_token);
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.ok(first.body.refresh_token, 'rotated');
    assert.notEqual(first.body.refresh_token, body.refresh_token);
    assert.equal(decodeJwt(first.body.id_token).payload.sub, 'user-alice');

    const reuse = await refresh(clientA, body.refresh_token);
    assert.equal(reuse.status, 400);
    assert.equal(reuse.body.error, 'invalid_grant', 'the rotated-out token is dead');
    // oidc-provider treats reuse as theft and revokes the whole grant.
    const after = await refresh(clientA, first.body.refresh_token);
    assert.equal(after.body.error, 'invalid_grant', 'reuse revoked the grant');
  });

  test('a replayed code fails and revokes what the code issued (RFC 6749 4.1.2)', async () => {
    const flow = await login(clientA, { jar: sessionA, expectForm: false });
    const { body } = await exchange(clientA, flow);
    const replay = await exchange(clientA, flow);
    assert.equal(replay.body.error, 'invalid_grant', 'a code works once');
    const dead = await refresh(clientA, body.refresh_token);
    assert.equal(dead.body.error, 'invalid_grant', 'refresh token revoked by the replay');
  });

  test('second login with an IdP session needs no form; revocation', async () => {
    const flow = await login(clientA, { jar: sessionA, expectForm: false });
    const { body } = await exchange(clientA, flow);
    assert.ok(body.refresh_token);
    idTokenA = body.id_token;

    const res = await fetch(meta.revocation_endpoint, {
      method: 'POST',
      headers: {
        authorization: basicAuth(clientA.client_id, clientA.client_secret),
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token: body.refresh_token, token_type_hint: 'refresh_token' }),
    });
    assert.equal(res.status, 200);
    const dead = await refresh(clientA, body.refresh_token);
    assert.equal(dead.body.error, 'invalid_grant');
  });

  test('rotation "never": no refresh_token in the response, the old one keeps working', async () => {
    const flow = await login(clientB, { user: 'bob' });
    assert.ok(flow.redirectUri.startsWith(`http://localhost:${rpPort}/`));
    const { body } = await exchange(clientB, flow);
    assert.ok(body.refresh_token);
    assert.deepEqual(decodeJwt(body.id_token).payload.groups, ['users']);
    assert.equal(decodeJwt(body.id_token).payload.sub, 'user-bob');

    for (let i = 0; i < 2; i += 1) {
      const r = await refresh(clientB, body.refresh_token);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.ok(r.body.access_token && r.body.id_token);
      assert.equal('refresh_token' in r.body, false);
    }

    // Admin revocation of everything the client holds: refresh then fails.
    const revoke = await fetch(new URL(`/__test/revoke-grants?client_id=${clientB.client_id}`, issuer), { method: 'POST' });
    assert.equal(revoke.status, 200);
    assert.ok((await revoke.json()).revoked_grants >= 1);
    const dead = await refresh(clientB, body.refresh_token);
    assert.equal(dead.body.error, 'invalid_grant');
  });

  test('refresh tokens only with offline_access; prompt=login re-authenticates', async () => {
    const client = await register({ test_refresh_rotation: 'threshold' });
    const jar = new CookieJar();
    const plain = await exchange(client, await login(client, { jar, scope: 'openid profile' }));
    assert.equal(plain.status, 200);
    assert.equal(plain.body.refresh_token, undefined, 'no offline_access, no refresh token');
    assert.equal(decodeJwt(plain.body.id_token).payload.email, undefined, 'no email scope, no email claim');

    // With a live IdP session, prompt=login still shows the form.
    const flow = await login(client, { jar, expectForm: true, extra: { prompt: 'login' } });
    const { body } = await exchange(client, flow);
    assert.ok(body.refresh_token, 'offline_access with prompt=login still yields a refresh token');

    // "threshold": a fresh token is not rotated, like Authentik.
    const r = await refresh(client, body.refresh_token);
    assert.equal(r.status, 200);
    assert.equal('refresh_token' in r.body, false);
  });

  test('test_refreshed_sub: refreshed ID token carries another sub', async () => {
    const client = await register({ test_refreshed_sub: 'user-mallory' });
    const { body } = await exchange(client, await login(client));
    assert.equal(decodeJwt(body.id_token).payload.sub, 'user-alice');
    const r = await refresh(client, body.refresh_token);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(decodeJwt(r.body.id_token).payload.sub, 'user-mallory');
  });

  test('RP-initiated logout redirects to post_logout_redirect_uri and sends back-channel logout', async () => {
    const url = new URL(meta.end_session_endpoint);
    url.search = new URLSearchParams({
      id_token_hint: idTokenA,
      post_logout_redirect_uri: clientA.post_logout_redirect_uris[0],
      state: 'bye',
    });
    const res = await request(url.href, { jar: sessionA });
    assert.equal(res.status, 303);
    assert.equal(res.headers.get('location'), `${clientA.post_logout_redirect_uris[0]}?state=bye`);

    assert.equal(logoutTokens.length, 1, 'one back-channel logout token');
    assert.ok(verifyJwtSignature(logoutTokens[0], jwks));
    const { payload } = decodeJwt(logoutTokens[0]);
    assert.equal(payload.sub, 'user-alice');
    assert.equal(payload.aud, clientA.client_id);
    assert.equal(payload.sid, decodeJwt(idTokenA).payload.sid);
    assert.ok(payload.events['http://schemas.openid.net/event/backchannel-logout']);

    // A client without the IdP's cookies (e.g. a plain HTTP client following
    // the logout URL) gets the same single redirect.
    const bare = await request(url.href);
    assert.equal(bare.status, 303);
    assert.equal(bare.headers.get('location'), `${clientA.post_logout_redirect_uris[0]}?state=bye`);

    // The IdP session is gone: the next authorization shows the login form.
    const flow = await login(clientA, { jar: sessionA, expectForm: true });
    assert.ok(flow.code);
  });

  test('admin back-channel logout and stats', async () => {
    const res = await fetch(
      new URL(`/__test/backchannel-logout?client_id=${clientA.client_id}&sub=user-alice&sid=abc`, issuer),
      { method: 'POST' },
    );
    assert.equal(res.status, 200);
    assert.equal(logoutTokens.length, 2);
    assert.equal(decodeJwt(logoutTokens[1]).payload.sid, 'abc');

    assert.deepEqual(await stats(clientA.client_id), {
      authorization_code_grants: 3, // the replayed code is not counted
      refresh_token_grants: 1,
      refresh_token_failures: 4,
      revocations: 1,
      revoked_refresh_tokens: 1,
      end_sessions: 2,
      backchannel_logouts: 2,
      backchannel_logout_failures: 0,
    });
    const b = await stats(clientB.client_id);
    assert.equal(b.authorization_code_grants, 1);
    assert.equal(b.refresh_token_grants, 2);
    assert.equal(b.refresh_token_failures, 1);
    assert.equal((await stats('nobody')).refresh_token_grants, 0);
  });
});

describe('tests/idp/server.mjs with an Authentik-shaped issuer path', { timeout: 60_000 }, () => {
  test('discovery and endpoints live under the issuer path', async () => {
    const port = await freePort();
    const issuer = `http://localhost:${port}/application/o/demo/`;
    const idp = startNode('tests/idp/server.mjs', [], { IDP_PORT: String(port), IDP_ISSUER: issuer }, /^idp ready on /);
    try {
      assert.equal(await idp.readyLine, `idp ready on ${issuer}`);
      const meta = await (await fetch(`${issuer}.well-known/openid-configuration`)).json();
      assert.equal(meta.issuer, issuer);
      assert.equal(meta.token_endpoint, `${issuer}token`);
      assert.equal((await fetch(new URL('/__test/health', issuer))).status, 200);
    } finally {
      await idp.stop();
    }
  });
});
