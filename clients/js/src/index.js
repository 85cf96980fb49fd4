// Browser client for the static-login backend (/auth/*).
//
// The page never sees a token: the session lives in HttpOnly cookies and this
// client only asks the backend who the user is. It
//   - redeems an exchange hand-off code (`#code=...`) on start, after first
//     removing it from the address bar,
//   - refreshes the session shortly before the access token expires, with one
//     tab doing the refresh and the others picking the result up over a
//     BroadcastChannel (serialised with navigator.locks where available),
//   - polls `GET /auth/session?background=1` so a logout in another tab (or an
//     expired session) is noticed without sliding the idle window,
//   - sends `X-Requested-With: XMLHttpRequest` with every POST (CSRF guard).
//
// No dependencies; every browser global it touches can be injected for tests.

/**
 * @typedef {object} User
 * @property {string} sub
 * @property {string} [name]
 * @property {string} [email]
 * @property {string} [preferred_username]
 * @property {string[]} [groups]
 */

/**
 * @typedef {object} Session
 * @property {true} authenticated
 * @property {User} user
 * @property {number} expires_at         access token expiry (epoch seconds)
 * @property {number} idle_expires_at    idle timeout (epoch seconds)
 * @property {number} session_expires_at absolute timeout (epoch seconds)
 */

/**
 * @typedef {object} AuthOptions
 * @property {string} [baseUrl]        origin (and optional path prefix) of the API, '' for same origin
 * @property {string} [basePath]       path of the endpoints below baseUrl, default '/auth'
 * @property {number} [pollInterval]   ms between background session polls (0 disables), default 60000
 * @property {number} [refreshLeeway]  seconds before expires_at to refresh, default 60
 * @property {string} [channelName]    BroadcastChannel name, default 'static-login'
 * @property {boolean} [autoStart]     start (hand-off, first fetch, timers) immediately, default true
 * @property {typeof fetch} [fetch]
 * @property {Location} [location]
 * @property {History} [history]
 * @property {typeof BroadcastChannel | null} [BroadcastChannel]
 * @property {{ request: Function } | null} [locks]   navigator.locks
 * @property {Document | null} [document]             for visibilitychange (re-check when a tab is shown)
 * @property {() => number} [now]                    ms clock
 * @property {typeof setTimeout} [setTimeout]
 * @property {typeof clearTimeout} [clearTimeout]
 */

/**
 * @typedef {object} Auth
 * @property {(opts?: { returnTo?: string }) => void} login
 *   navigates to the IdP; returns to `returnTo` (default: the current page)
 * @property {() => Promise<void>} logout
 *   ends the session and navigates to the IdP's end-session URL (or reloads)
 * @property {(opts?: { background?: boolean, force?: boolean }) => Promise<Session | null>} getSession
 *   the current session (cached after the first fetch unless `force`), or null
 * @property {(cb: (session: Session | null) => void) => () => void} onSessionChange
 *   called on every change (login, logout, refresh, expiry); returns an unsubscribe function
 * @property {() => Promise<Session | null>} refresh
 *   refreshes now (coordinated across tabs); null when the session ended
 * @property {() => Promise<Session | null>} ready
 *   resolves once the start-up work (hand-off, first session fetch) is done
 * @property {() => Session | null | undefined} current
 *   the last known session synchronously (undefined before the first answer)
 * @property {() => void} destroy
 *   stops timers and closes the channel
 */

const XRW = { 'X-Requested-With': 'XMLHttpRequest' };
const PEER_WAIT_MS = 10000;

/**
 * Creates the client. In a browser, `createAuth()` with no options is enough
 * when the site and /auth/* share an origin.
 * @param {AuthOptions} [options]
 * @returns {Auth}
 */
export function createAuth(options = {}) {
  const g = /** @type {any} */ (globalThis);
  const {
    baseUrl = '',
    basePath = '/auth',
    pollInterval = 60000,
    refreshLeeway = 60,
    channelName = 'static-login',
    autoStart = true,
  } = options;
  const doFetch = options.fetch ?? g.fetch.bind(g);
  const loc = options.location ?? g.location;
  const hist = options.history ?? g.history;
  const BC = options.BroadcastChannel !== undefined ? options.BroadcastChannel : g.BroadcastChannel;
  const locks = options.locks !== undefined ? options.locks : g.navigator?.locks;
  const doc = options.document !== undefined ? options.document : g.document;
  const now = options.now ?? (() => Date.now());
  const setT = options.setTimeout ?? g.setTimeout.bind(g);
  const clearT = options.clearTimeout ?? g.clearTimeout.bind(g);

  const api = baseUrl.replace(/\/$/, '') + basePath;
  const tabId = Math.random().toString(36).slice(2);

  /** @type {Session | null | undefined} */
  let session;
  /** @type {Set<(s: Session | null) => void>} */
  const listeners = new Set();
  /** @type {Promise<Session | null> | null} */
  let refreshing = null;
  /** @type {Promise<Session | null> | null} */
  let readyPromise = null;
  let refreshTimer = null;
  let pollTimer = null;
  let destroyed = false;
  // Newest refresh result seen from another tab: {at: ms, session}.
  let lastBroadcast = { at: 0, session: /** @type {Session | null | undefined} */ (undefined) };
  // Without navigator.locks: another tab announced a refresh in progress.
  let peerRefreshUntil = 0;
  /** @type {Set<(s: Session | null) => void>} */
  const waiters = new Set();
  let lastRefreshAt = 0;

  const channel = BC ? new BC(channelName) : null;
  if (channel) {
    channel.onmessage = (/** @type {MessageEvent} */ ev) => {
      const msg = ev.data;
      if (!msg || msg.from === tabId) return;
      if (msg.type === 'session') {
        lastBroadcast = { at: now(), session: msg.session };
        lastRefreshAt = now();
        peerRefreshUntil = 0;
        set(msg.session, false);
        for (const w of [...waiters]) w(msg.session);
      } else if (msg.type === 'refreshing') {
        peerRefreshUntil = now() + PEER_WAIT_MS;
      }
    };
  }

  // ------------------------------------------------------------- helpers ---

  function sameSession(a, b) {
    if (!a || !b) return a === b;
    return a.user?.sub === b.user?.sub
      && a.expires_at === b.expires_at
      && a.idle_expires_at === b.idle_expires_at
      && a.session_expires_at === b.session_expires_at;
  }

  /**
   * Records a new state, notifies listeners on change, reschedules timers and
   * (when `announce`) tells the other tabs.
   * @param {Session | null} next
   * @param {boolean} announce
   */
  function set(next, announce) {
    if (destroyed) return;
    const prev = session;
    session = next;
    schedule();
    if (announce && channel) {
      try { channel.postMessage({ type: 'session', from: tabId, session: next }); } catch { /* closed */ }
    }
    if (prev === undefined || !sameSession(prev, next)) {
      for (const cb of [...listeners]) {
        try { cb(next); } catch (err) { setT(() => { throw err; }, 0); }
      }
    }
  }

  /** @returns {Promise<Session | null>} */
  async function parse(res) {
    if (res.ok) {
      const body = await res.json();
      return body && body.authenticated ? body : null;
    }
    if (res.status === 401) return null;
    const err = new Error(`static-login: ${res.status} from ${res.url || 'auth endpoint'}`);
    /** @type {any} */ (err).status = res.status;
    throw err;
  }

  function post(path, body) {
    /** @type {RequestInit} */
    const init = { method: 'POST', credentials: 'include', headers: { ...XRW } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return doFetch(api + path, init);
  }

  // -------------------------------------------------------------- timers ---

  function schedule() {
    if (destroyed) return;
    if (refreshTimer) { clearT(refreshTimer); refreshTimer = null; }
    if (pollTimer) { clearT(pollTimer); pollTimer = null; }
    if (pollInterval > 0) pollTimer = setT(poll, pollInterval);
    if (session && session.expires_at) {
      // Refresh refreshLeeway seconds before the access token expires, but
      // never later than the session's own end (then a poll notices).
      const due = session.expires_at * 1000 - refreshLeeway * 1000 - now();
      // Never loop: after a refresh, wait at least a few seconds for the next.
      const floor = now() - lastRefreshAt < 30000 ? 5000 : 0;
      // Spread tabs a little so they rarely race for the lock at all.
      const delay = Math.max(floor, due) + Math.floor(Math.random() * 1000);
      refreshTimer = setT(() => { refresh().catch(() => {}); }, delay);
    }
  }

  async function poll() {
    pollTimer = null;
    try {
      await getSession({ background: true, force: true });
    } catch {
      schedule(); // network trouble: keep the last state, try again later
    }
  }

  // ------------------------------------------------------------- actions ---

  /** @param {{ background?: boolean, force?: boolean }} [opts] */
  async function getSession(opts = {}) {
    if (!opts.force && session !== undefined) return session;
    if (!opts.force && readyPromise) return readyPromise;
    const url = api + '/session' + (opts.background ? '?background=1' : '');
    const res = await doFetch(url, { credentials: 'include', headers: { Accept: 'application/json' } });
    const next = await parse(res);
    set(next, false);
    return next;
  }

  /** Resolves with the next session another tab broadcasts, or undefined after ms. */
  function waitForPeer(ms) {
    return new Promise((resolve) => {
      const done = (s) => { waiters.delete(done); clearT(t); resolve(s); };
      const t = setT(() => done(undefined), ms);
      waiters.add(done);
    });
  }

  async function doRefresh() {
    const started = now();
    const run = async () => {
      // Another tab finished a refresh while we waited for the lock: use it.
      if (lastBroadcast.at >= started && lastBroadcast.session !== undefined) {
        return lastBroadcast.session;
      }
      if (channel) {
        try { channel.postMessage({ type: 'refreshing', from: tabId }); } catch { /* closed */ }
      }
      const res = await post('/refresh');
      const next = await parse(res);
      lastRefreshAt = now();
      set(next, true);
      return next;
    };
    if (locks && typeof locks.request === 'function') {
      return locks.request(`${channelName}:refresh`, run);
    }
    // No Web Locks: if another tab announced a refresh, wait for its result.
    if (peerRefreshUntil > now()) {
      const peer = await waitForPeer(peerRefreshUntil - now());
      if (peer !== undefined) return peer;
    }
    return run();
  }

  function refresh() {
    if (!refreshing) {
      refreshing = doRefresh().finally(() => { refreshing = null; });
    }
    return refreshing;
  }

  /** @param {{ returnTo?: string }} [opts] */
  function login(opts = {}) {
    const returnTo = opts.returnTo ?? (baseUrl
      ? loc.href.split('#')[0]
      : loc.pathname + loc.search);
    loc.assign(`${api}/login?return_to=${encodeURIComponent(returnTo)}`);
  }

  async function logout() {
    const res = await post('/logout');
    let logoutUrl = null;
    if (res.ok) {
      try { logoutUrl = (await res.json()).logout_url ?? null; } catch { /* no body */ }
    }
    set(null, true);
    if (logoutUrl) loc.assign(logoutUrl);
    else loc.reload();
  }

  /** @param {(s: Session | null) => void} cb */
  function onSessionChange(cb) {
    listeners.add(cb);
    return () => { listeners.delete(cb); };
  }

  // ---------------------------------------------------------------- start ---

  function takeHandoffCode() {
    const hash = loc.hash || '';
    if (!/[#&]code=/.test(hash)) return null;
    const params = new URLSearchParams(hash.slice(1));
    const code = params.get('code');
    params.delete('code');
    const rest = params.toString();
    // Out of the address bar (and so out of history, bookmarks and
    // screenshots) before anything else happens.
    hist.replaceState(hist.state, '', loc.pathname + loc.search + (rest ? '#' + rest : ''));
    return code;
  }

  async function start() {
    const code = takeHandoffCode();
    if (code) {
      try {
        const res = await post('/session', { code });
        const next = await parse(res);
        if (next) { set(next, true); return next; }
      } catch { /* fall through: maybe a cookie session exists anyway */ }
    }
    return getSession({ force: true });
  }

  function onVisible() {
    if (doc && doc.visibilityState === 'visible' && session !== undefined) {
      getSession({ background: true, force: true }).catch(() => {});
    }
  }

  function ready() {
    if (!readyPromise) {
      readyPromise = start();
      readyPromise.catch(() => { schedule(); });
    }
    return readyPromise;
  }

  function destroy() {
    destroyed = true;
    if (refreshTimer) clearT(refreshTimer);
    if (pollTimer) clearT(pollTimer);
    if (channel) channel.close();
    if (doc && doc.removeEventListener) doc.removeEventListener('visibilitychange', onVisible);
    listeners.clear();
  }

  if (doc && doc.addEventListener) doc.addEventListener('visibilitychange', onVisible);
  if (autoStart) ready().catch(() => {});

  return {
    login,
    logout,
    getSession,
    onSessionChange,
    refresh,
    ready,
    current: () => session,
    destroy,
  };
}

export default createAuth;
