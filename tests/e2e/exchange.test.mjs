// End-to-end, exchange hand-off: the demo is served by a plain static server
// on another origin (E2E_SITE_ORIGIN) and talks to the API (E2E_API_ORIGIN,
// local-gateway with SESSION_HANDOFF=exchange) with CORS. Skipped unless
// tests/e2e/run started that second stack.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { exposedState, launch, submitIdpForm } from './helpers.mjs';

const SITE = process.env.E2E_SITE_ORIGIN;
const API = process.env.E2E_API_ORIGIN;
const IDP = process.env.E2E_EXCHANGE_IDP;
const skip = !(SITE && API && IDP) && 'exchange stack not running (tests/e2e/run starts it)';

let browser;
before(async () => { if (!skip) browser = await launch(); });
after(async () => { await browser?.close(); });

test('exchange hand-off: the code never stays in the address bar, the session works across origins', { skip }, async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const seen = [];
  page.on('framenavigated', (f) => { if (f === page.mainFrame()) seen.push(f.url()); });

  await page.goto(`${SITE}/?api=${encodeURIComponent(API)}&poll=1000`);
  await page.locator('#logged-out').waitFor();
  await page.locator('#login').click();
  await submitIdpForm(page, 'alice', 'alice-password', IDP);
  await page.waitForURL((u) => u.origin === SITE, { timeout: 10000 });
  await page.locator('#user-name').filter({ hasText: 'Alice Example' }).waitFor({ timeout: 10000 });

  // The hand-off arrived as #code=... and the client replaced it at once.
  const landing = seen.find((u) => u.startsWith(SITE) && u.includes('#code='));
  assert.ok(landing, `the callback handed off with a fragment code: ${seen.join(' | ')}`);
  const code = new URL(landing).hash.match(/code=([^&]+)/)[1];
  assert.equal(code.length, 43);
  assert.ok(!page.url().includes('code='), page.url());
  const state = await exposedState(page);
  for (const [where, text] of Object.entries(state)) {
    assert.ok(!String(text).includes(code), `${where} still holds the exchange code`);
    assert.ok(!String(text).includes('eyJ'), `${where} contains a JWT`);
  }
  // Going back does not bring the code back either (the history entry was replaced).
  assert.ok(!(await page.evaluate(() => location.hash)).includes('code'));

  // A second redemption of the same code fails.
  const replay = await fetch(`${API}/auth/session`, {
    method: 'POST',
    headers: { origin: SITE, 'x-requested-with': 'XMLHttpRequest', 'content-type': 'application/json' },
    body: JSON.stringify({ code }),
  });
  assert.ok(replay.status >= 400 && replay.status < 500, `replayed code answered ${replay.status}`);

  // Cross-origin reads, refreshes and the members page all work.
  const s = await page.evaluate(() => window.demoAuth.getSession({ force: true }));
  assert.equal(s?.user.email, 'alice@example.com');
  const r = await page.evaluate(() => window.demoAuth.refresh());
  assert.equal(r?.user.sub, 'user-alice');
  await page.goto(`${SITE}/members.html`);
  await page.locator('#members-only').waitFor({ timeout: 5000 });

  // Logout from the site's origin.
  await page.goto(`${SITE}/`);
  await page.locator('#logout').click();
  // scripts/dev registers POST_LOGOUT_REDIRECT_URI on the API's origin.
  await page.waitForURL((u) => u.origin === API && u.pathname === '/', { timeout: 10000 });
  await page.locator('#logged-out').waitFor({ timeout: 5000 });
  const after = await page.evaluate(async (api) => (await fetch(`${api}/auth/session`, { credentials: 'include' })).status, API);
  assert.equal(after, 401);
  await context.close();
});
