// End-to-end: the demo site on local-gateway (cookie hand-off), a real
// browser, the test IdP's real login form.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  BASE, IDP, POLL_MS, ensureArtifacts, exposedState, launch, loginThroughDemo, submitIdpForm,
} from './helpers.mjs';

let browser;
before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

/** Cookie header of everything the browser would send to `url`. */
async function cookieHeader(context, url) {
  const cookies = await context.cookies(url);
  return cookies.map((c) => `${c.name}=${c.value}`).join('; ');
}

test('log in through the IdP form, see the user, no token anywhere a script can reach', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${BASE}/?poll=${POLL_MS}`);
  await page.locator('#logged-out').waitFor();
  await loginThroughDemo(page);

  assert.equal(await page.locator('#user-name').textContent(), 'Alice Example');
  assert.equal(await page.locator('#user-email').textContent(), 'alice@example.com');
  assert.match(await page.locator('#user-groups').textContent(), /staff.*users/);
  assert.match(await page.locator('#idle-expiry').textContent(), /^\d+:\d\d/);
  assert.match(await page.locator('#session-expiry').textContent(), /^\d+:\d\d:\d\d$/);
  assert.equal(new URL(page.url()).pathname, '/');

  const cookies = await context.cookies(BASE);
  assert.ok(cookies.length > 0, 'session cookies were set');
  const state = await exposedState(page);
  for (const c of cookies) {
    assert.ok(c.httpOnly, `cookie ${c.name} is HttpOnly`);
    assert.ok(!state.cookie.includes(c.value), `document.cookie exposes ${c.name}`);
  }
  for (const [where, text] of Object.entries(state)) {
    assert.ok(!String(text).includes('eyJ'), `${where} contains a JWT`);
  }
  assert.ok(!state.url.includes('code='), 'no code in the URL');

  await page.screenshot({ path: `${ensureArtifacts()}logged-in.png`, fullPage: true });
  await context.close();
});

test('two tabs: a refresh in one keeps both working; a logout in one is noticed by the other', async () => {
  const context = await browser.newContext();
  const one = await context.newPage();
  await one.goto(`${BASE}/?poll=${POLL_MS}`);
  await loginThroughDemo(one);

  const two = await context.newPage();
  const polls = [];
  two.on('request', (r) => { if (r.url().includes('/auth/session')) polls.push(r.url()); });
  await two.goto(`${BASE}/?poll=${POLL_MS}`);
  await two.locator('#user-name').filter({ hasText: 'Alice Example' }).waitFor();

  // Refresh in tab one (the client's refresh(); the demo exposes its Auth).
  const before = await one.evaluate(() => window.demoAuth.current());
  const twoChanged = two.evaluate(() => new Promise((resolve) => {
    const off = window.demoAuth.onSessionChange((s) => { off(); resolve(s); });
  }));
  const refreshed = await one.evaluate(() => window.demoAuth.refresh());
  assert.equal(refreshed.user.sub, 'user-alice');
  assert.ok(refreshed.expires_at >= before.expires_at);
  const seenByTwo = await Promise.race([
    twoChanged,
    new Promise((r) => { setTimeout(() => r('no broadcast'), 3000); }),
  ]);
  if (refreshed.expires_at !== before.expires_at) {
    assert.equal(seenByTwo?.expires_at, refreshed.expires_at, 'tab two picked up the refresh');
  }
  // Tab two still works with the rotated cookies: it reads and refreshes itself.
  const twoStill = await two.evaluate(() => window.demoAuth.getSession({ force: true }));
  assert.equal(twoStill?.user.sub, 'user-alice');
  const twoRefresh = await two.evaluate(() => window.demoAuth.refresh());
  assert.equal(twoRefresh?.user.sub, 'user-alice');
  assert.equal(await two.locator('#user-name').textContent(), 'Alice Example');

  // Tab two polls in the background with background=1 (so polls never keep an idle session alive).
  await two.waitForTimeout(POLL_MS * 1.5);
  assert.ok(polls.some((u) => u.endsWith('/auth/session?background=1')), polls.join('\n'));
  assert.ok(polls.filter((u) => u.endsWith('/auth/session')).length <= 2, polls.join('\n'));

  // Copy the cookies before logout to replay them afterwards.
  const replay = await cookieHeader(context, `${BASE}/auth/session`);
  const beforeLogout = await fetch(`${BASE}/auth/session`, { headers: { cookie: replay } });
  assert.equal(beforeLogout.status, 200, 'the copied cookies work before logout');

  // Logout in tab one: through the IdP's end-session URL back to the site.
  await one.locator('#logout').click();
  await one.waitForURL((u) => u.origin === BASE && u.pathname === '/', { timeout: 10000 });
  await one.locator('#logged-out').waitFor({ timeout: 5000 });
  const t0 = Date.now();
  await two.locator('#logged-out').waitFor({ timeout: POLL_MS * 2 + 500 });
  const noticedAfter = Date.now() - t0;
  assert.ok(noticedAfter <= POLL_MS * 2 + 500, `tab two noticed after ${noticedAfter} ms`);

  // The copied cookies are dead: the session was revoked server-side.
  const afterLogout = await fetch(`${BASE}/auth/session`, { headers: { cookie: replay } });
  assert.equal(afterLogout.status, 401);
  const body = await afterLogout.json();
  assert.equal(body.authenticated, false);
  const refreshReplay = await fetch(`${BASE}/auth/refresh`, {
    method: 'POST',
    headers: { cookie: await Promise.resolve(replay), origin: BASE, 'x-requested-with': 'XMLHttpRequest' },
  });
  assert.equal(refreshReplay.status, 401, 'replayed cookies cannot refresh either');

  // The provider session ended too: logging in again asks for credentials.
  await one.locator('#login').click();
  await one.waitForURL((u) => u.origin === IDP, { timeout: 10000 });
  await one.locator('#password').waitFor({ timeout: 5000 });
  await context.close();
});

test('the members page sends a logged-out visitor to log in and brings them back', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${BASE}/members.html`);
  await submitIdpForm(page);
  await page.waitForURL(`${BASE}/members.html`, { timeout: 10000 });
  await page.locator('#members-only').filter({ hasText: 'Members only' }).waitFor({ timeout: 5000 });
  assert.match(await page.locator('#user-name').textContent(), /Alice Example/);
  await context.close();
});

test('a session ended elsewhere (no broadcast) is noticed by the next background poll', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${BASE}/?poll=${POLL_MS}`);
  await loginThroughDemo(page);
  // End the session with a raw request: the client's BroadcastChannel is not
  // told, so only its background poll can find out.
  const status = await page.evaluate(async () => (await fetch('/auth/logout', {
    method: 'POST', credentials: 'include', headers: { 'X-Requested-With': 'XMLHttpRequest' },
  })).status);
  assert.equal(status, 200);
  const t0 = Date.now();
  await page.locator('#logged-out').waitFor({ timeout: POLL_MS * 2 + 500 });
  assert.ok(Date.now() - t0 <= POLL_MS * 2 + 500);
  await context.close();
});
