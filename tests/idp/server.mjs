#!/usr/bin/env node
// Test OpenID provider for local development and automated tests, built on
// the OpenID-certified `oidc-provider` (v9). See tests/idp/README.md for the
// environment variables, the per-client test metadata, the browserless login
// steps and the /__test admin API.
//
// It is deliberately permissive where a test needs it (open dynamic client
// registration, an unauthenticated admin API, plain http) and must only ever
// listen on loopback.

import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';

import Provider, { errors } from 'oidc-provider';

import { TestStore } from './store.mjs';

// ---------------------------------------------------------------- config ---

function envInt(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) {
    throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
  }
  return n;
}

function envList(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined) return fallback;
  return raw.split(',').map((s) => s.trim()).filter(Boolean);
}

const PORT = envInt('IDP_PORT', 9001);
const ISSUER = process.env.IDP_ISSUER || `http://localhost:${PORT}`;
// oidc-provider derives its mount path from the issuer's path, e.g. an
// Authentik-shaped issuer http://localhost:9001/application/o/demo/ serves
// discovery at /application/o/demo/.well-known/openid-configuration.
const MOUNT_PATH = new URL(ISSUER).pathname.replace(/\/$/, '');

const TTL = {
  accessToken: envInt('IDP_ACCESS_TOKEN_TTL', 300),
  idToken: envInt('IDP_ID_TOKEN_TTL', 300),
  refreshToken: envInt('IDP_REFRESH_TOKEN_TTL', 86400),
  session: 14 * 24 * 3600,
};

const ROTATION_MODES = new Set(['always', 'never', 'threshold']);

const DEMO_CLIENT = (() => {
  const backchannel = process.env.IDP_BACKCHANNEL_LOGOUT_URI || undefined;
  const rotation = process.env.IDP_CLIENT_REFRESH_ROTATION || undefined;
  if (rotation && !ROTATION_MODES.has(rotation)) {
    throw new Error(`IDP_CLIENT_REFRESH_ROTATION must be one of ${[...ROTATION_MODES].join(', ')}`);
  }
  return {
    client_id: process.env.IDP_CLIENT_ID || 'static-site-demo',
    client_secret: process.env.IDP_CLIENT_SECRET || 'demo-secret',
    client_name: 'Static site demo',
    application_type: 'web',
    redirect_uris: envList('IDP_REDIRECT_URIS', ['http://localhost:9000/auth/callback']),
    post_logout_redirect_uris: envList('IDP_POST_LOGOUT_REDIRECT_URIS', ['http://localhost:9000/']),
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    // A client has one registered method, but oidc-provider accepts
    // client_secret_post too for any client_secret_basic client.
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
    ...(backchannel
      ? { backchannel_logout_uri: backchannel, backchannel_logout_session_required: true }
      : {}),
    ...(rotation ? { test_refresh_rotation: rotation } : {}),
  };
})();

// Test users. `sub` is deliberately not the login name, so a relying party
// that confuses the two shows up in tests.
const USERS = [
  {
    login: 'alice',
    password: 'alice-password',
    claims: {
      sub: 'user-alice',
      name: 'Alice Example',
      preferred_username: 'alice',
      email: 'alice@example.com',
      email_verified: true,
      groups: ['staff', 'users'],
    },
  },
  {
    login: 'bob',
    password: 'bob-password',
    claims: {
      sub: 'user-bob',
      name: 'Bob Example',
      preferred_username: 'bob',
      email: 'bob@example.com',
      email_verified: true,
      groups: ['users'],
    },
  },
];
const USERS_BY_LOGIN = new Map(USERS.map((u) => [u.login, u]));
const USERS_BY_SUB = new Map(USERS.map((u) => [u.claims.sub, u]));

// ------------------------------------------------------------------ keys ---

function generateSigningKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    ...privateKey.export({ format: 'jwk' }),
    kid: crypto.randomBytes(8).toString('hex'),
    alg: 'RS256',
    use: 'sig',
  };
}

// IDP_JWKS_FILE: load the private JWKS from that file; when the file does not
// exist yet, generate a key and write it there, so a dev IdP keeps its key
// (and relying parties their JWKS cache) across restarts.
function loadJwks() {
  const file = process.env.IDP_JWKS_FILE;
  if (file && fs.existsSync(file)) {
    const jwks = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (!Array.isArray(jwks.keys) || jwks.keys.length === 0) {
      throw new Error(`${file} holds no JWKS ("keys" array)`);
    }
    return jwks;
  }
  const jwks = { keys: [generateSigningKey()] };
  if (file) fs.writeFileSync(file, `${JSON.stringify(jwks)}\n`, { mode: 0o600 });
  return jwks;
}

// ----------------------------------------------------------------- stats ---

const STAT_KEYS = [
  'authorization_code_grants',
  'refresh_token_grants',
  'refresh_token_failures',
  'revocations',
  'revoked_refresh_tokens',
  'end_sessions',
  'backchannel_logouts',
  'backchannel_logout_failures',
];
const stats = new Map(); // client_id -> counters

function statsFor(clientId) {
  let s = stats.get(clientId);
  if (!s) {
    s = Object.fromEntries(STAT_KEYS.map((k) => [k, 0]));
    stats.set(clientId, s);
  }
  return s;
}

function bump(clientId, key) {
  statsFor(clientId ?? '(unknown)')[key] += 1;
}

// ------------------------------------------------------------ html pages ---

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

const STYLE = 'body{font-family:system-ui,sans-serif;max-width:22rem;margin:3rem auto;padding:0 1rem}'
  + 'label,input,button{display:block;width:100%;box-sizing:border-box}'
  + 'input{margin:.25rem 0 1rem;padding:.5rem}button{padding:.6rem;margin-bottom:1rem}'
  + '.error{color:#b00020}';

function page(ctx, status, title, body) {
  ctx.status = status;
  ctx.type = 'html';
  ctx.set('Cache-Control', 'no-store');
  // No form-action directive on purpose: after the login POST the browser
  // follows redirects to the relying party, which form-action would block.
  ctx.set('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'");
  ctx.body = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>${STYLE}</style></head>
<body><main>${body}</main></body></html>`;
}

function loginPage(ctx, { uid, client, login = '', error, status = 200 }) {
  const base = `${MOUNT_PATH}/interaction/${encodeURIComponent(uid)}`;
  const clientName = client?.clientName || client?.clientId || 'an application';
  // "Sign in" appears only on the button, so a Playwright `text=Sign in`
  // selector finds exactly that element.
  page(ctx, status, 'Test IdP login', `
<h1>Test IdP</h1>
<p>Log in to continue to <strong>${escapeHtml(clientName)}</strong></p>
${error ? `<p class="error" id="error" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="${base}/login" autocomplete="off">
  <label for="login">Username</label>
  <input id="login" name="login" type="text" value="${escapeHtml(login)}" autofocus required>
  <label for="password">Password</label>
  <input id="password" name="password" type="password" required>
  <button type="submit">Sign in</button>
</form>
<p><a id="cancel" href="${base}/abort">Cancel</a></p>
<p><small>Test users: alice / alice-password, bob / bob-password</small></p>`);
}

async function renderError(ctx, out) {
  page(ctx, ctx.status, 'Error - test IdP', `
<h1>Error</h1>
<p class="error" id="error"><code>${escapeHtml(out.error)}</code></p>
${out.error_description ? `<p id="error_description">${escapeHtml(out.error_description)}</p>` : ''}`);
}

async function postLogoutSuccessSource(ctx) {
  page(ctx, 200, 'Signed out - test IdP', '<h1>Signed out</h1><p>You are signed out of the test IdP.</p>');
}

// ------------------------------------------------------- provider config ---

// Per-client test behaviours, set as extra client metadata (at dynamic
// registration, or on the pre-registered demo client):
//   test_refresh_rotation: "always" (default) | "never" | "threshold"
//   test_refreshed_sub:    string; ID tokens from the refresh_token grant carry
//                          this sub instead of the real one (hostile IdP)
function extraClientMetadataValidator(ctx, key, value) {
  if (value === undefined) return;
  if (key === 'test_refresh_rotation' && !ROTATION_MODES.has(value)) {
    throw new errors.InvalidClientMetadata(
      `test_refresh_rotation must be one of ${[...ROTATION_MODES].join(', ')}`,
    );
  }
  if (key === 'test_refreshed_sub' && (typeof value !== 'string' || value === '')) {
    throw new errors.InvalidClientMetadata('test_refreshed_sub must be a non-empty string');
  }
}

function rotateRefreshToken(ctx) {
  const { RefreshToken: refreshToken, Client: client } = ctx.oidc.entities;
  switch (client.test_refresh_rotation ?? 'always') {
    case 'never':
      return false;
    // Authentik-like: only rotate once most of the token's lifetime is gone.
    case 'threshold':
      return refreshToken.ttlPercentagePassed() >= 70;
    default:
      return true;
  }
}

// The ID token's `sub` is the account's accountId (oidc-provider overwrites
// any `sub` returned by claims()), so the hostile-IdP case is done by handing
// the refresh_token grant an account whose accountId is the replacement sub.
// The refresh token and grant keep the real account; only the tokens issued
// by that refresh response carry the replacement.
async function findAccount(ctx, sub) {
  const user = USERS_BY_SUB.get(sub);
  if (!user) return undefined;

  let accountId = sub;
  const oidc = ctx?.oidc;
  if (
    oidc?.route === 'token'
    && oidc.params?.grant_type === 'refresh_token'
    && oidc.client?.test_refreshed_sub
  ) {
    accountId = oidc.client.test_refreshed_sub;
  }

  return {
    accountId,
    // oidc-provider filters these by the granted scopes (see `claims` below).
    async claims() {
      return { ...user.claims, sub: accountId };
    },
  };
}

// Backchannel logout requests go to relying parties on loopback. oidc-provider
// passes an undici dispatcher that refuses special-use addresses (SSRF
// protection, which includes 127.0.0.0/8); drop it, and allow loopback only.
function loopbackOnlyFetch(url, { dispatcher, ...options }) {
  const { hostname } = new URL(url);
  if (!['localhost', '127.0.0.1', '[::1]'].includes(hostname)) {
    return Promise.reject(new Error(`test IdP only calls loopback URLs, refused ${hostname}`));
  }
  return globalThis.fetch(url, options);
}

const store = new TestStore({ clockToleranceSecs: 15 });

const configuration = {
  adapter: store.adapterFactory(),
  clients: [DEMO_CLIENT],
  clientDefaults: {
    application_type: 'web',
    grant_types: ['authorization_code', 'refresh_token'],
    id_token_signed_response_alg: 'RS256',
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  },
  extraClientMetadata: {
    properties: ['test_refresh_rotation', 'test_refreshed_sub'],
    validator: extraClientMetadataValidator,
  },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    // Like Authentik's default `profile` scope mapping, which carries groups.
    profile: ['name', 'preferred_username', 'groups'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
  },
  // Put the scope-derived claims into the ID token too (by default
  // oidc-provider only puts them in userinfo when an access token is issued).
  conformIdTokenClaims: false,
  responseTypes: ['code'],
  // Like most providers: redirect_uri must always be sent.
  allowOmittingSingleRegisteredRedirectUri: false,
  pkce: { required: () => true }, // v9 only supports S256
  cookies: {
    // Secure is set by oidc-provider only when the request is https, so these
    // work over plain http on localhost. Lax so the top-level redirect back
    // from the login form keeps the interaction cookie.
    long: { httpOnly: true, sameSite: 'lax' },
    short: { httpOnly: true, sameSite: 'lax' },
  },
  features: {
    devInteractions: { enabled: false }, // our own pages, below
    registration: {
      enabled: true,
      initialAccessToken: false, // open registration (RFC 7591)
      issueRegistrationAccessToken: false,
    },
    revocation: {
      enabled: true,
      // A client may revoke only its own tokens (default policy, minus the notice).
      async allowedPolicy(ctx, client, token) {
        if (token.clientId !== client.clientId) {
          throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
        }
        return true;
      },
    },
    introspection: {
      enabled: true,
      async allowedPolicy(ctx, client, token) {
        return token.clientId === client.clientId;
      },
    },
    rpInitiatedLogout: {
      enabled: true,
      postLogoutSuccessSource,
      // Only reached when the GET-confirmation shortcut below is bypassed.
      async logoutSource(ctx, form) {
        page(ctx, 200, 'Sign out - test IdP', `<h1>Sign out?</h1>${form}
<button type="submit" form="op.logoutForm" value="yes" name="logout">Sign out</button>`);
      },
    },
    backchannelLogout: { enabled: true },
    userinfo: { enabled: true },
    // Off to resemble a typical self-hosted IdP (Authentik): plain bearer
    // tokens, no PAR endpoint, no resource indicators.
    dPoP: { enabled: false },
    pushedAuthorizationRequests: { enabled: false },
    resourceIndicators: { enabled: false },
  },
  findAccount,
  rotateRefreshToken,
  interactions: {
    url: (ctx, interaction) => `${MOUNT_PATH}/interaction/${interaction.uid}`,
  },
  ttl: {
    AccessToken: TTL.accessToken,
    AuthorizationCode: 60,
    IdToken: TTL.idToken,
    RefreshToken: TTL.refreshToken,
    Interaction: 3600,
    Session: TTL.session,
    Grant: Math.max(TTL.session, TTL.refreshToken),
  },
  // Confidential clients only, like the deployed setup.
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  clientBasedCORS: () => false,
  renderError,
  fetch: loopbackOnlyFetch,
  jwks: loadJwks(),
};

const provider = new Provider(ISSUER, configuration);

// ---------------------------------------------------------------- events ---

provider.on('grant.success', (ctx) => {
  const clientId = ctx.oidc.client?.clientId;
  switch (ctx.oidc.params?.grant_type) {
    case 'authorization_code': bump(clientId, 'authorization_code_grants'); break;
    case 'refresh_token': bump(clientId, 'refresh_token_grants'); break;
    default: break;
  }
});
provider.on('grant.error', (ctx, err) => {
  // A failed client authentication is not a refresh attempt by that client.
  if (ctx.oidc.params?.grant_type === 'refresh_token' && err.error !== 'invalid_client') {
    bump(ctx.oidc.client?.clientId, 'refresh_token_failures');
  }
});
provider.on('end_session.success', (ctx) => bump(ctx.oidc.client?.clientId, 'end_sessions'));
provider.on('backchannel.success', (ctx, client) => bump(client.clientId, 'backchannel_logouts'));
provider.on('backchannel.error', (ctx, err, client) => {
  bump(client.clientId, 'backchannel_logout_failures');
  process.stderr.write(`idp: backchannel logout to client ${client.clientId} failed: ${err.message}\n`);
});

// Errors are logged by kind and description only: never request parameters,
// which may hold codes or tokens.
provider.on('server_error', (ctx, err) => {
  process.stderr.write(`idp: server_error on ${ctx.method} ${ctx.path}: ${err.stack ?? err}\n`);
});
for (const event of [
  'authorization.error', 'grant.error', 'end_session.error', 'end_session_confirm.error',
  'registration_create.error', 'revocation.error', 'userinfo.error', 'introspection.error',
]) {
  provider.on(event, (ctx, err) => {
    const client = ctx.oidc?.client?.clientId ?? '-';
    process.stderr.write(`idp: ${event} client=${client}: ${err.error} (${err.error_detail ?? err.error_description ?? ''})\n`);
  });
}

// ------------------------------------------------------------ middleware ---

const ROUTES = {
  authorization: '/auth',
  endSession: '/session/end',
};

async function readForm(ctx, limit = 16 * 1024) {
  if (!ctx.is('application/x-www-form-urlencoded')) return new URLSearchParams();
  const chunks = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += chunk.length;
    if (size > limit) ctx.throw(413);
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// Grants the client everything it asked for: this IdP has no consent screen.
async function autoGrant(details, accountId) {
  const { params, prompt } = details;
  let grant;
  if (details.grantId) {
    grant = await provider.Grant.find(details.grantId);
    if (grant && grant.accountId !== accountId) grant = undefined;
  }
  grant ??= new provider.Grant({ accountId, clientId: params.client_id });
  if (params.scope) grant.addOIDCScope(params.scope);
  if (prompt.details?.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  return grant.save();
}

function interactionErrorPage(ctx, err) {
  const expired = err instanceof errors.SessionNotFound;
  page(ctx, 400, 'Error - test IdP', `<h1>Error</h1><p class="error" id="error">${expired
    ? 'This sign-in request has expired or was already completed. Start again from the application.'
    : escapeHtml(err.message)}</p>`);
}

// Interaction pages: GET /interaction/:uid, POST /interaction/:uid/login,
// GET /interaction/:uid/abort (paths relative to the issuer's path).
provider.use(async (ctx, next) => {
  const m = /^\/interaction\/([^/]+)(?:\/(login|abort))?$/.exec(ctx.path);
  if (!m) return next();
  const [, uid, action] = m;

  let details;
  try {
    details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== uid) throw new errors.SessionNotFound('interaction mismatch');
  } catch (err) {
    return interactionErrorPage(ctx, err);
  }
  const client = await provider.Client.find(details.params.client_id);

  if (ctx.method === 'GET' && action === undefined) {
    if (details.prompt.name === 'login') {
      return loginPage(ctx, { uid, client, login: details.params.login_hint ?? '' });
    }
    if (details.prompt.name === 'consent') {
      const grantId = await autoGrant(details, details.session.accountId);
      const returnTo = await provider.interactionResult(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      ctx.status = 303;
      return ctx.redirect(returnTo);
    }
    return interactionErrorPage(ctx, new Error(`unsupported prompt ${details.prompt.name}`));
  }

  if (ctx.method === 'POST' && action === 'login') {
    if (details.prompt.name !== 'login') {
      return interactionErrorPage(ctx, new Error('this interaction does not expect a login'));
    }
    const form = await readForm(ctx);
    const login = form.get('login') ?? '';
    const user = USERS_BY_LOGIN.get(login);
    const password = Buffer.from(form.get('password') ?? '');
    const ok = user
      && password.length === user.password.length
      && crypto.timingSafeEqual(password, Buffer.from(user.password));
    if (!ok) {
      return loginPage(ctx, {
        uid, client, login, error: 'Invalid username or password.', status: 401,
      });
    }
    const accountId = user.claims.sub;
    // Finish login and consent in one go (consent is automatic), so the
    // browser goes straight back through /auth/:uid to the redirect_uri.
    const grantId = await autoGrant(details, accountId);
    const returnTo = await provider.interactionResult(
      ctx.req,
      ctx.res,
      { login: { accountId }, consent: { grantId } },
      { mergeWithLastSubmission: false },
    );
    ctx.status = 303;
    return ctx.redirect(returnTo);
  }

  if (ctx.method === 'GET' && action === 'abort') {
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
    ctx.status = 303;
    return ctx.redirect(returnTo);
  }

  ctx.status = 405;
  ctx.body = 'method not allowed';
  return undefined;
});

// oidc-provider keeps `offline_access` only when the request also carries
// prompt=consent (OIDC Core 11). Relying parties written for Authentik (which
// issues refresh tokens for offline_access alone) don't send it, so add
// `consent` to the prompt here; consent is granted automatically anyway.
// prompt=none is left alone (then there is no refresh token, as the spec says).
provider.use(async (ctx, next) => {
  if (ctx.method === 'GET' && ctx.path === ROUTES.authorization) {
    const params = new URLSearchParams(ctx.querystring);
    const scopes = (params.get('scope') ?? '').split(' ');
    const prompts = params.getAll('prompt');
    if (scopes.includes('offline_access') && prompts.length <= 1) {
      const prompt = new Set((prompts[0] ?? '').split(' ').filter(Boolean));
      if (!prompt.has('none') && !prompt.has('consent')) {
        prompt.add('consent');
        params.set('prompt', [...prompt].join(' '));
        ctx.querystring = params.toString();
      }
    }
  }
  return next();
});

// RP-initiated logout without the confirmation step: oidc-provider answers
// GET /session/end with an HTML form that must be POSTed back to
// /session/end/confirm. Do that POST here, server side, with the cookies
// the browser sent plus any set by the first step, and answer the original
// GET with the final 303 (to post_logout_redirect_uri or the success page)
// and all Set-Cookie headers. Browsers and plain HTTP clients both just
// follow one redirect.
provider.use(async (ctx, next) => {
  if (ctx.method !== 'GET' || ctx.path !== ROUTES.endSession) return next();
  await next();
  const secret = ctx.oidc?.session?.state?.secret;
  if (ctx.status !== 200 || !secret) return undefined; // errors pass through

  const firstCookies = [].concat(ctx.response.get('Set-Cookie') || []);
  const jar = new Map();
  for (const part of (ctx.get('Cookie') || '').split(';')) {
    const i = part.indexOf('=');
    if (i > 0) jar.set(part.slice(0, i).trim(), part.slice(i + 1).trim());
  }
  for (const c of firstCookies) {
    const [pair] = c.split(';');
    const i = pair.indexOf('=');
    if (i > 0) jar.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
  }

  const res = await fetch(`http://127.0.0.1:${PORT}${MOUNT_PATH}${ROUTES.endSession}/confirm`, {
    method: 'POST',
    redirect: 'manual',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; '),
      accept: 'text/html',
    },
    body: new URLSearchParams({ xsrf: secret, logout: 'yes' }),
  });
  const location = res.headers.get('location');
  if (res.status !== 303 || !location) {
    process.stderr.write(`idp: logout confirmation failed with status ${res.status}\n`);
    return undefined; // leave the confirmation page in place
  }
  ctx.set('Set-Cookie', [...firstCookies, ...res.headers.getSetCookie()]);
  ctx.redirect(location);
  ctx.status = 303;
  return undefined;
});

// Post-processing of token and revocation responses.
provider.use(async (ctx, next) => {
  await next();
  const oidc = ctx.oidc;
  if (!oidc) return;

  // A refresh that did not rotate answers without refresh_token, as Authentik
  // does before its rotation threshold; the client keeps the old one (which
  // stays valid). oidc-provider itself would echo the old value.
  if (
    oidc.route === 'token'
    && ctx.status === 200
    && oidc.params?.grant_type === 'refresh_token'
    && !oidc.entities.RotatedRefreshToken
    && ctx.body && typeof ctx.body === 'object'
  ) {
    delete ctx.body.refresh_token;
  }

  // oidc-provider emits no event for revocation; count successful calls
  // (RFC 7009: unknown tokens also get 200) and actual refresh token deletions.
  if (oidc.route === 'revocation' && ctx.status === 200 && oidc.client) {
    bump(oidc.client.clientId, 'revocations');
    if (oidc.entities.RefreshToken) bump(oidc.client.clientId, 'revoked_refresh_tokens');
  }
});

// ------------------------------------------------------------- admin API ---

function isLoopback(address = '') {
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

function sendJson(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

async function adminApi(req, res, url) {
  if (!isLoopback(req.socket.remoteAddress)) return sendJson(res, 403, { error: 'loopback only' });
  const route = `${req.method} ${url.pathname}`;
  const clientId = url.searchParams.get('client_id');

  switch (route) {
    case 'GET /__test/health':
      return sendJson(res, 200, { ok: true, issuer: ISSUER });

    case 'GET /__test/stats':
      if (clientId) return sendJson(res, 200, { ...statsFor(clientId) });
      return sendJson(res, 200, { clients: Object.fromEntries(stats) });

    // Revoke every grant of a client (and all tokens issued under them), like
    // an administrator removing the user's access: the next refresh fails
    // with invalid_grant.
    case 'POST /__test/revoke-grants': {
      if (!clientId) return sendJson(res, 400, { error: 'client_id is required' });
      return sendJson(res, 200, { revoked_grants: store.revokeClientGrants(clientId) });
    }

    // Send a back-channel logout token to the client now, for `sub` (and
    // `sid` when the client requires it), without any browser session.
    case 'POST /__test/backchannel-logout': {
      const sub = url.searchParams.get('sub');
      const sid = url.searchParams.get('sid') ?? undefined;
      if (!clientId || !sub) return sendJson(res, 400, { error: 'client_id and sub are required' });
      const client = await provider.Client.find(clientId);
      if (!client?.backchannelLogoutUri) {
        return sendJson(res, 404, { error: 'unknown client or no backchannel_logout_uri' });
      }
      try {
        await client.backchannelLogout(sub, sid);
        bump(clientId, 'backchannel_logouts');
        return sendJson(res, 200, { delivered: true });
      } catch (err) {
        bump(clientId, 'backchannel_logout_failures');
        return sendJson(res, 502, { delivered: false, error: err.message });
      }
    }

    default:
      return sendJson(res, 404, { error: 'not found' });
  }
}

// ---------------------------------------------------------------- server ---

const providerCallback = provider.callback();

function handle(req, res) {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (url.pathname.startsWith('/__test/')) {
    adminApi(req, res, url).catch((err) => {
      process.stderr.write(`idp: admin API error: ${err.stack ?? err}\n`);
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error' });
    });
    return;
  }
  if (MOUNT_PATH) {
    if (url.pathname !== MOUNT_PATH && !url.pathname.startsWith(`${MOUNT_PATH}/`)) {
      sendJson(res, 404, { error: 'not found' });
      return;
    }
    // Mount the provider under the issuer's path, the way koa-mount would:
    // oidc-provider reads the mount path back from req.originalUrl.
    req.originalUrl = req.url;
    req.url = req.url.slice(MOUNT_PATH.length) || '/';
  }
  providerCallback(req, res);
}

function listen(host) {
  return new Promise((resolve, reject) => {
    const server = http.createServer(handle);
    server.once('error', reject);
    server.listen(PORT, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

const servers = [];
try {
  servers.push(await listen('127.0.0.1'));
} catch (err) {
  process.stderr.write(`idp: cannot listen on 127.0.0.1:${PORT} (${err.code ?? err.message})\n`);
  process.exit(1);
}
// Also answer on [::1], since `localhost` may resolve to it first. Not fatal
// when IPv6 is unavailable or that port is taken there.
try {
  servers.push(await listen('::1'));
} catch (err) {
  process.stderr.write(`idp: not listening on [::1]:${PORT} (${err.code ?? err.message})\n`);
}

process.stdout.write(`idp ready on ${ISSUER}\n`);

function shutdown() {
  for (const server of servers) {
    server.close();
    server.closeAllConnections();
  }
  clearInterval(store.sweeper);
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
