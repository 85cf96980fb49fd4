// In-memory storage adapter for the test OpenID provider.
//
// Why not oidc-provider's bundled MemoryAdapter: it is an LRU capped at 1000
// entries shared by every model (clients, sessions, grants, tokens,
// interactions). A long integration run that registers a client per test and
// logs in many times would silently evict live clients or refresh tokens and
// make tests flaky. This store has no size cap; entries go when they expire
// (checked on read, swept once a minute) or when oidc-provider deletes them.
//
// It also keeps a per-client index of grants, used by the test admin API to
// revoke everything a client holds (simulating an administrator revoking a
// user's access at the IdP).

const GRANTABLE = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
  'PreAuthorizedCode',
]);

const epochTime = () => Math.floor(Date.now() / 1000);

export class TestStore {
  #entries = new Map(); // key -> { value, expiresAt (ms) | undefined }
  #grantMembers = new Map(); // grantId -> Set of "Model:id" keys
  #clientGrants = new Map(); // clientId -> Set of grantIds

  constructor({ clockToleranceSecs = 0 } = {}) {
    this.clockToleranceMs = clockToleranceSecs * 1000;
    // Sweep expired entries so a long-running dev IdP does not grow forever.
    this.sweeper = setInterval(() => this.sweep(), 60_000);
    this.sweeper.unref();
  }

  get(key) {
    const entry = this.#entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt !== undefined && entry.expiresAt <= Date.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  set(key, value, expiresInSecs) {
    const expiresAt = typeof expiresInSecs === 'number'
      ? Date.now() + expiresInSecs * 1000 + this.clockToleranceMs
      : undefined;
    this.#entries.set(key, { value, expiresAt });
  }

  delete(key) {
    this.#entries.delete(key);
  }

  sweep() {
    const now = Date.now();
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt !== undefined && entry.expiresAt <= now) this.#entries.delete(key);
    }
    for (const [grantId, members] of this.#grantMembers) {
      for (const key of members) if (!this.#entries.has(key)) members.delete(key);
      if (members.size === 0 && !this.#entries.has(`Grant:${grantId}`)) this.#grantMembers.delete(grantId);
    }
    for (const [clientId, grants] of this.#clientGrants) {
      for (const grantId of grants) {
        if (!this.#entries.has(`Grant:${grantId}`)) grants.delete(grantId);
      }
      if (grants.size === 0) this.#clientGrants.delete(clientId);
    }
  }

  addGrantMember(grantId, key) {
    let members = this.#grantMembers.get(grantId);
    if (!members) {
      members = new Set();
      this.#grantMembers.set(grantId, members);
    }
    members.add(key);
  }

  removeGrantMember(grantId, key) {
    this.#grantMembers.get(grantId)?.delete(key);
  }

  revokeByGrantId(grantId) {
    for (const key of this.#grantMembers.get(grantId) ?? []) this.#entries.delete(key);
    this.#grantMembers.delete(grantId);
  }

  trackClientGrant(clientId, grantId) {
    let grants = this.#clientGrants.get(clientId);
    if (!grants) {
      grants = new Set();
      this.#clientGrants.set(clientId, grants);
    }
    grants.add(grantId);
  }

  // Deletes every grant of the client and every token/code issued under them.
  // Returns how many grants were revoked.
  revokeClientGrants(clientId) {
    const grants = [...(this.#clientGrants.get(clientId) ?? [])];
    for (const grantId of grants) {
      this.revokeByGrantId(grantId);
      this.#entries.delete(`Grant:${grantId}`);
    }
    this.#clientGrants.delete(clientId);
    return grants.length;
  }

  // Returns an adapter factory for oidc-provider's `adapter` configuration.
  adapterFactory() {
    const store = this;
    return (model) => new TestAdapter(model, store);
  }
}

// Implements oidc-provider's adapter interface over a TestStore.
class TestAdapter {
  constructor(model, store) {
    this.model = model;
    this.store = store;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const { store } = this;
    const key = this.key(id);
    const previous = store.get(key);
    if (previous) this.#removeIndexes(previous, key);

    store.set(key, payload, expiresIn);
    if (this.model === 'Session' && payload.uid) store.set(`sessionUid:${payload.uid}`, id, expiresIn);
    if (payload.userCode) store.set(`userCode:${payload.userCode}`, id, expiresIn);
    if (GRANTABLE.has(this.model) && payload.grantId) store.addGrantMember(payload.grantId, key);
    if (this.model === 'Grant' && payload.clientId) store.trackClientGrant(payload.clientId, id);
  }

  async find(id) {
    return this.store.get(this.key(id));
  }

  async findByUid(uid) {
    const id = this.store.get(`sessionUid:${uid}`);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode(userCode) {
    const id = this.store.get(`userCode:${userCode}`);
    return id === undefined ? undefined : this.find(id);
  }

  async consume(id) {
    const payload = this.store.get(this.key(id));
    if (payload) payload.consumed = epochTime();
  }

  async destroy(id) {
    const key = this.key(id);
    const payload = this.store.get(key);
    this.store.delete(key);
    if (payload) this.#removeIndexes(payload, key);
  }

  async revokeByGrantId(grantId) {
    this.store.revokeByGrantId(grantId);
  }

  #removeIndexes(payload, key) {
    const { store } = this;
    if (payload.uid && this.model === 'Session') store.delete(`sessionUid:${payload.uid}`);
    if (payload.userCode) store.delete(`userCode:${payload.userCode}`);
    if (GRANTABLE.has(this.model) && payload.grantId) store.removeGrantMember(payload.grantId, key);
  }
}
