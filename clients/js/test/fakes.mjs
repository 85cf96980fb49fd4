// Small fakes of the browser globals the client uses.

export const now0 = 1_700_000_000_000;

export function session(overrides = {}) {
  const t = Math.floor(now0 / 1000);
  return {
    authenticated: true,
    user: { sub: 'user-alice', name: 'Alice Example', email: 'alice@example.com', groups: ['staff'] },
    expires_at: t + 300,
    idle_expires_at: t + 1800,
    session_expires_at: t + 28800,
    ...overrides,
  };
}

export function json(status, body) {
  return {
    ok: status >= 200 && status < 300,
    status,
    url: '',
    async json() { return body; },
  };
}

/** fetch that answers from `routes` ("METHOD /path" -> fn(call) -> response) and records calls. */
export function fakeFetch(routes, log = []) {
  const fn = async (url, init = {}) => {
    const method = init.method ?? 'GET';
    const u = new URL(url, 'https://site.example');
    const call = { method, url: String(url), path: u.pathname, search: u.search, init, headers: init.headers ?? {} };
    log.push(call);
    const route = routes[`${method} ${u.pathname}`];
    if (!route) return json(404, { error: 'not_found' });
    return route(call);
  };
  fn.calls = log;
  return fn;
}

export function fakeLocation(href, events = []) {
  const loc = {
    _url: new URL(href),
    get href() { return this._url.href; },
    get hash() { return this._url.hash; },
    get pathname() { return this._url.pathname; },
    get search() { return this._url.search; },
    assigned: [],
    reloaded: 0,
    assign(u) { events.push(['assign', u]); this.assigned.push(u); },
    reload() { events.push(['reload']); this.reloaded += 1; },
  };
  return loc;
}

export function fakeHistory(loc, events = []) {
  return {
    state: null,
    replaceState(state, _title, url) {
      events.push(['replaceState', url]);
      this.state = state;
      loc._url = new URL(url, loc._url);
    },
  };
}

/** BroadcastChannel class whose instances deliver to each other (async, like the real one). */
export function channelHub() {
  const members = new Set();
  return class FakeBroadcastChannel {
    constructor(name) {
      this.name = name;
      this.onmessage = null;
      members.add(this);
    }
    postMessage(data) {
      const copy = structuredClone(data);
      for (const m of members) {
        if (m !== this && m.name === this.name) {
          queueMicrotask(() => m.onmessage?.({ data: copy }));
        }
      }
    }
    close() { members.delete(this); }
  };
}

/** navigator.locks: exclusive, FIFO, shared by the tabs given the same object. */
export function fakeLocks() {
  const tails = new Map();
  return {
    request(name, cb) {
      const prev = tails.get(name) ?? Promise.resolve();
      const run = prev.then(() => cb());
      tails.set(name, run.catch(() => {}));
      return run;
    },
  };
}

/** Manual timers: nothing fires unless the test calls fire()/fireAll(). */
export function fakeTimers() {
  let id = 0;
  const pending = new Map();
  return {
    setTimeout(fn, ms) { id += 1; pending.set(id, { fn, ms }); return id; },
    clearTimeout(t) { pending.delete(t); },
    pending,
    /** runs every pending timer whose delay is <= maxMs (once). */
    fire(maxMs = Infinity) {
      for (const [k, t] of [...pending]) {
        if (t.ms <= maxMs) { pending.delete(k); t.fn(); }
      }
    },
  };
}

export const tick = () => new Promise((r) => setTimeout(r, 0));
export async function settle(n = 10) { for (let i = 0; i < n; i += 1) await tick(); }
