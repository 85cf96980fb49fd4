import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { createAuth } from '../src/index.js';
import {
  channelHub, fakeFetch, fakeHistory, fakeLocation, fakeLocks, fakeTimers, json, now0, session, settle,
} from './fakes.mjs';

function tab({ href = 'https://site.example/page?x=1', routes, BC = null, locks = null, events = [], log = [], ...rest } = {}) {
  const location = fakeLocation(href, events);
  const history = fakeHistory(location, events);
  const timers = fakeTimers();
  const fetch = fakeFetch(routes, log);
  const wrapped = async (url, init) => { events.push(['fetch', init?.method ?? 'GET', url]); return fetch(url, init); };
  wrapped.calls = fetch.calls;
  const auth = createAuth({
    fetch: wrapped,
    location,
    history,
    BroadcastChannel: BC,
    locks,
    document: null,
    now: () => now0,
    setTimeout: timers.setTimeout,
    clearTimeout: timers.clearTimeout,
    ...rest,
  });
  return { auth, location, history, timers, fetch: wrapped, events };
}

test('the exchange code leaves the URL before it is POSTed, and is redeemed once', async () => {
  const code = 'a'.repeat(43);
  let bodySeen;
  const t = tab({
    href: `https://site.example/app?tab=2#code=${code}`,
    routes: {
      'POST /auth/session': (c) => { bodySeen = JSON.parse(c.init.body); return json(200, session()); },
      'GET /auth/session': () => json(200, session()),
    },
  });
  // Synchronously, before any await: the code is gone from the address bar.
  assert.equal(t.location.hash, '');
  assert.equal(t.location.href, 'https://site.example/app?tab=2');
  const s = await t.auth.ready();
  assert.equal(s.user.sub, 'user-alice');
  assert.deepEqual(bodySeen, { code });
  const replaceAt = t.events.findIndex((e) => e[0] === 'replaceState');
  const postAt = t.events.findIndex((e) => e[0] === 'fetch' && e[1] === 'POST');
  assert.ok(replaceAt >= 0 && postAt > replaceAt, `replaceState (${replaceAt}) before POST (${postAt})`);
  assert.ok(!t.events.some((e) => e[0] === 'replaceState' && e[1].includes(code)));
  assert.equal(t.fetch.calls.filter((c) => c.method === 'POST').length, 1);
  assert.equal(t.fetch.calls.filter((c) => c.path === '/auth/session' && c.method === 'GET').length, 0);
});

test('other fragment parameters survive the hand-off', async () => {
  const t = tab({
    href: 'https://site.example/app#section=2&code=xyz',
    routes: { 'POST /auth/session': () => json(200, session()) },
  });
  assert.equal(t.location.hash, '#section=2');
  await t.auth.ready();
});

test('a failed redemption falls back to GET /auth/session', async () => {
  const t = tab({
    href: 'https://site.example/#code=used',
    routes: {
      'POST /auth/session': () => json(400, { error: 'invalid_grant' }),
      'GET /auth/session': () => json(401, { error: 'login_required', authenticated: false }),
    },
  });
  assert.equal(await t.auth.ready(), null);
  assert.deepEqual(t.fetch.calls.map((c) => `${c.method} ${c.path}`), ['POST /auth/session', 'GET /auth/session']);
});

test('every POST carries X-Requested-With and credentials', async () => {
  const t = tab({
    routes: {
      'GET /auth/session': () => json(200, session()),
      'POST /auth/refresh': () => json(200, session({ expires_at: session().expires_at + 300 })),
      'POST /auth/logout': () => json(200, { logout_url: 'https://idp.example/end?x=1' }),
    },
  });
  await t.auth.ready();
  await t.auth.refresh();
  await t.auth.logout();
  const posts = t.fetch.calls.filter((c) => c.method === 'POST');
  assert.deepEqual(posts.map((c) => c.path), ['/auth/refresh', '/auth/logout']);
  for (const c of posts) {
    assert.equal(c.headers['X-Requested-With'], 'XMLHttpRequest', c.path);
    assert.equal(c.init.credentials, 'include', c.path);
  }
  assert.deepEqual(t.location.assigned, ['https://idp.example/end?x=1']);
});

test('the hand-off POST carries X-Requested-With too', async () => {
  const t = tab({ href: 'https://site.example/#code=abc', routes: { 'POST /auth/session': () => json(200, session()) } });
  await t.auth.ready();
  const [post] = t.fetch.calls;
  assert.equal(post.method, 'POST');
  assert.equal(post.headers['X-Requested-With'], 'XMLHttpRequest');
  assert.equal(post.headers['Content-Type'], 'application/json');
});

test('page load reads the session plainly, background polls add background=1', async () => {
  const t = tab({ routes: { 'GET /auth/session': () => json(200, session()) }, pollInterval: 1000 });
  await t.auth.ready();
  assert.equal(t.fetch.calls[0].search, '');
  t.timers.fire(1000); // the poll timer (the refresh timer is minutes away)
  await settle();
  t.timers.fire(1000);
  await settle();
  const polls = t.fetch.calls.slice(1);
  assert.equal(polls.length, 2);
  for (const p of polls) {
    assert.equal(p.method, 'GET');
    assert.equal(p.search, '?background=1');
  }
});

test('a refresh is scheduled about refreshLeeway seconds before expires_at', async () => {
  const t = tab({ routes: { 'GET /auth/session': () => json(200, session()) }, pollInterval: 0 });
  await t.auth.ready();
  const delays = [...t.timers.pending.values()].map((x) => x.ms);
  assert.equal(delays.length, 1);
  assert.ok(delays[0] >= 240_000 && delays[0] < 241_000, String(delays[0]));
});

for (const withLocks of [true, false]) {
  test(`two tabs sharing a channel refresh once (${withLocks ? 'navigator.locks' : 'no locks'})`, async () => {
    const BC = channelHub();
    const locks = withLocks ? fakeLocks() : null;
    const log = [];
    let refreshes = 0;
    const routes = {
      'GET /auth/session': () => json(200, session()),
      'POST /auth/refresh': async () => {
        refreshes += 1;
        await settle(3);
        return json(200, session({ expires_at: session().expires_at + 300 }));
      },
    };
    const a = tab({ routes, BC, locks, log });
    const b = tab({ routes, BC, locks, log });
    await Promise.all([a.auth.ready(), b.auth.ready()]);
    const changes = [];
    b.auth.onSessionChange((s) => changes.push(s));
    // Both tabs' refresh timers fire at (nearly) the same moment.
    let ra;
    let rb;
    if (withLocks) {
      [ra, rb] = await Promise.all([a.auth.refresh(), b.auth.refresh()]);
    } else {
      ra = a.auth.refresh();
      await settle(1); // the "refreshing" announcement reaches b first
      rb = b.auth.refresh();
      [ra, rb] = await Promise.all([ra, rb]);
    }
    assert.equal(refreshes, 1);
    assert.equal(ra.expires_at, session().expires_at + 300);
    assert.equal(rb.expires_at, ra.expires_at);
    assert.equal(b.auth.current().expires_at, ra.expires_at);
    assert.equal(changes.length, 1);
    // b rescheduled its own refresh timer from the new expiry.
    const bDelays = [...b.timers.pending.values()].map((x) => x.ms).filter((ms) => ms > 60_000);
    assert.ok(bDelays.every((ms) => ms >= 540_000), String(bDelays));
  });
}

test('a refresh in one tab updates the other without a request of its own', async () => {
  const BC = channelHub();
  const log = [];
  const routes = {
    'GET /auth/session': () => json(200, session()),
    'POST /auth/refresh': () => json(200, session({ expires_at: session().expires_at + 300 })),
  };
  const a = tab({ routes, BC, log });
  const b = tab({ routes, BC, log });
  await Promise.all([a.auth.ready(), b.auth.ready()]);
  const before = log.length;
  await a.auth.refresh();
  await settle();
  assert.equal(log.length - before, 1);
  assert.equal(b.auth.current().expires_at, session().expires_at + 300);
});

test('onSessionChange fires on login (hand-off) and on logout, also in the other tab', async () => {
  const BC = channelHub();
  let loggedIn = false;
  const routes = {
    'GET /auth/session': () => (loggedIn ? json(200, session()) : json(401, { error: 'login_required', authenticated: false })),
    'POST /auth/session': () => { loggedIn = true; return json(200, session()); },
    'POST /auth/logout': () => { loggedIn = false; return json(200, { logout_url: null }); },
  };
  const other = tab({ routes, BC });
  const otherChanges = [];
  other.auth.onSessionChange((s) => otherChanges.push(s && s.user.sub));
  await other.auth.ready();
  assert.deepEqual(otherChanges, [null]);

  const t = tab({ routes, BC, href: 'https://site.example/#code=xyz', autoStart: false });
  const changes = [];
  const off = t.auth.onSessionChange((s) => changes.push(s && s.user.sub));
  await t.auth.ready();
  await settle();
  assert.deepEqual(changes, ['user-alice']);
  assert.deepEqual(otherChanges, [null, 'user-alice']);

  await t.auth.logout();
  await settle();
  assert.deepEqual(changes, ['user-alice', null]);
  assert.deepEqual(otherChanges, [null, 'user-alice', null]);
  assert.equal(t.location.reloaded, 1); // no end-session URL: reload
  off();
});

test('onSessionChange fires when a background poll finds the session gone', async () => {
  let alive = true;
  const t = tab({
    routes: { 'GET /auth/session': () => (alive ? json(200, session()) : json(401, { error: 'login_required' })) },
    pollInterval: 5000,
  });
  const changes = [];
  t.auth.onSessionChange((s) => changes.push(!!s));
  await t.auth.ready();
  alive = false;
  t.timers.fire(5000);
  await settle();
  assert.deepEqual(changes, [true, false]);
});

test('a refresh answered 401 ends the session without retry loops', async () => {
  let refreshes = 0;
  const t = tab({
    routes: {
      'GET /auth/session': () => json(200, session()),
      'POST /auth/refresh': () => { refreshes += 1; return json(401, { error: 'login_required' }); },
    },
    pollInterval: 0,
  });
  await t.auth.ready();
  assert.equal(await t.auth.refresh(), null);
  assert.equal(t.auth.current(), null);
  assert.equal(t.timers.pending.size, 0);
  assert.equal(refreshes, 1);
});

test('login() sends the current path as return_to (same origin) or the full URL (baseUrl)', () => {
  const same = tab({ routes: { 'GET /auth/session': () => json(401, {}) }, href: 'https://site.example/a/b?c=d#frag', autoStart: false });
  same.auth.login();
  assert.deepEqual(same.location.assigned, ['/auth/login?return_to=%2Fa%2Fb%3Fc%3Dd']);
  const cross = tab({ routes: {}, href: 'https://site.example/a?c=d#frag', baseUrl: 'https://api.example/', autoStart: false });
  cross.auth.login();
  cross.auth.login({ returnTo: '/members.html' });
  assert.deepEqual(cross.location.assigned, [
    'https://api.example/auth/login?return_to=https%3A%2F%2Fsite.example%2Fa%3Fc%3Dd',
    'https://api.example/auth/login?return_to=%2Fmembers.html',
  ]);
});

test('the demo serves an identical copy of the client', () => {
  const src = readFileSync(new URL('../src/index.js', import.meta.url), 'utf8');
  const demo = readFileSync(new URL('../../../demo/auth.js', import.meta.url), 'utf8');
  assert.equal(demo, src, 'demo/auth.js is stale: run `npm run build` in clients/js');
});
