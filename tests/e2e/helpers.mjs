// Shared pieces of the browser tests: Debian's chromium driven by
// playwright-core, and the steps of a login through the test IdP's real form.
import { mkdirSync } from 'node:fs';

import { chromium } from 'playwright-core';

export const PORT = process.env.E2E_PORT ?? process.env.PORT ?? '9300';
export const IDP_PORT = process.env.E2E_IDP_PORT ?? process.env.IDP_PORT ?? '9301';
export const BASE = `http://localhost:${PORT}`;
export const IDP = `http://localhost:${IDP_PORT}`;
export const POLL_MS = 1000;
export const ARTIFACTS = new URL('../../target/e2e/', import.meta.url).pathname;

/**
 * Launches chromium. Playwright's launch() gives every browser a fresh,
 * temporary user-data dir (deleted on close); each newContext() is a further
 * isolated cookie jar, i.e. another user.
 */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

/** Fills and submits the IdP's login form on `page` (which must be showing it). */
export async function submitIdpForm(page, user = 'alice', password = `${user}-password`, idp = IDP) {
  await page.waitForURL((u) => u.origin === idp, { timeout: 10000 });
  await page.locator('#login').fill(user);
  await page.locator('#password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

/** From a logged-out demo page: click "Log in", sign in at the IdP, wait to be back and logged in. */
export async function loginThroughDemo(page, { base = BASE, user = 'alice' } = {}) {
  await page.locator('#login').click();
  await submitIdpForm(page, user);
  await page.waitForURL((u) => u.origin === base, { timeout: 10000 });
  await page.locator('#user-name').filter({ hasText: /\S/ }).waitFor({ timeout: 10000 });
}

export function ensureArtifacts() {
  mkdirSync(ARTIFACTS, { recursive: true });
  return ARTIFACTS;
}

/** The text of everything a script or a user could see: URL, storage, DOM, document.cookie. */
export function exposedState(page) {
  return page.evaluate(() => ({
    url: location.href,
    cookie: document.cookie,
    local: JSON.stringify({ ...localStorage }),
    session: JSON.stringify({ ...sessionStorage }),
    html: document.documentElement.outerHTML,
    history: history.length,
  }));
}
