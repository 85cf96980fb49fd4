// Node.js peer of the Rust `session` function (GET /auth/session): opens the
// three sealed session cookies with jose, checks the idle and absolute
// windows, counts the request and reads the revocation records in one
// concurrent round trip, slides the idle window, answers the same JSON.

import {
  COOKIE, IDLE_SECS, cookiesOf, env, error, json, limited, now, open, revoked, seal, setCookie,
} from './common.mjs';

const LIMIT = Number(env('RATE_LIMIT_SESSION_PER_WINDOW', '600'));

async function openSession(cookies) {
  if (!cookies[COOKIE.session] || !cookies[COOKIE.tokens]) return null;
  try {
    const [marker, tokens, refresh] = await Promise.all([
      open(cookies[COOKIE.session]),
      open(cookies[COOKIE.tokens]),
      cookies[COOKIE.refresh] ? open(cookies[COOKIE.refresh]) : null,
    ]);
    if (tokens.sid !== marker.sid || (refresh && refresh.sid !== marker.sid)) return null;
    return { marker, tokens };
  } catch {
    return null;
  }
}

export async function handler(event) {
  if (event.requestContext.http.method !== 'GET') return error(405, 'invalid_request', 'method not allowed');
  const t = now();
  const ip = event.requestContext.http.sourceIp;
  const session = await openSession(cookiesOf(event));
  const idleEnd = session && Math.min(session.marker.last_seen + IDLE_SECS, session.marker.expires_at);
  if (!session || t >= session.marker.expires_at || t >= idleEnd) {
    if (await limited('session', LIMIT, ip, t)) return error(429, 'temporarily_unavailable', 'slow down');
    return error(401, 'login_required', 'no valid session');
  }
  const { marker, tokens } = session;
  const [over, isRevoked] = await Promise.all([limited('session', LIMIT, ip, t), revoked(marker, tokens, t)]);
  if (over) return error(429, 'temporarily_unavailable', 'slow down');
  if (isRevoked) {
    console.log(JSON.stringify({ level: 'INFO', target: 'audit', event: 'session_rejected', reason: 'revoked', sub: tokens.user.sub }));
    return error(401, 'login_required', 'no valid session');
  }
  const background = ['1', 'true'].includes(event.queryStringParameters?.background);
  const cookies = [];
  if (!background) {
    marker.last_seen = t;
    const sealed = await seal({ sid: marker.sid, created_at: marker.created_at, last_seen: t, expires_at: marker.expires_at }, marker.expires_at);
    cookies.push(setCookie(COOKIE.session, sealed, marker.expires_at - t));
  }
  return json(200, {
    authenticated: true,
    user: tokens.user,
    expires_at: tokens.access_expires_at,
    idle_expires_at: Math.min(marker.last_seen + IDLE_SECS, marker.expires_at),
    session_expires_at: marker.expires_at,
  }, cookies);
}
