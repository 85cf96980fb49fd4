// Shared set-up of the demo pages. `auth.js` is a copy of
// clients/js/src/index.js (`npm run build` in clients/js refreshes it), so the
// demo needs no build step.
//
// Query parameters, for trying things out and for the end-to-end tests:
//   ?poll=MS   background poll interval (default 60000)
//   ?api=URL   the API's origin when it differs from this page's (exchange hand-off)
// They are remembered for this tab in sessionStorage, so they survive the
// round trip through the identity provider.
import { createAuth } from './auth.js';

const params = new URLSearchParams(location.search);
for (const key of ['poll', 'api']) {
  if (params.has(key)) sessionStorage.setItem(`demo.${key}`, params.get(key));
}
const poll = Number(sessionStorage.getItem('demo.poll')) || 60000;
const api = sessionStorage.getItem('demo.api') || document.querySelector('meta[name="auth-api"]')?.content || '';

export const auth = createAuth({ baseUrl: api, pollInterval: poll });
// For poking at it from the console (and from the browser tests).
globalThis.demoAuth = auth;
