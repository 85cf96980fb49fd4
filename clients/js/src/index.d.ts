export interface User {
  sub: string;
  name?: string;
  email?: string;
  preferred_username?: string;
  groups?: string[];
  [claim: string]: unknown;
}

export interface Session {
  authenticated: true;
  user: User;
  /** access token expiry, epoch seconds */
  expires_at: number;
  /** idle timeout, epoch seconds */
  idle_expires_at: number;
  /** absolute timeout, epoch seconds */
  session_expires_at: number;
}

export interface AuthOptions {
  /** origin (plus optional prefix) of the API; '' (default) for the page's origin */
  baseUrl?: string;
  /** path of the endpoints below baseUrl, default '/auth' */
  basePath?: string;
  /** ms between background session polls (0 disables), default 60000 */
  pollInterval?: number;
  /** seconds before expires_at at which to refresh, default 60 */
  refreshLeeway?: number;
  /** BroadcastChannel (and lock) name, default 'static-login' */
  channelName?: string;
  /** run the start-up work (hand-off, first fetch, timers) at once, default true */
  autoStart?: boolean;
  fetch?: typeof fetch;
  location?: Pick<Location, 'hash' | 'href' | 'pathname' | 'search' | 'assign' | 'reload'>;
  history?: Pick<History, 'state' | 'replaceState'>;
  BroadcastChannel?: typeof BroadcastChannel | null;
  locks?: Pick<LockManager, 'request'> | null;
  document?: Pick<Document, 'visibilityState' | 'addEventListener' | 'removeEventListener'> | null;
  now?: () => number;
  setTimeout?: typeof setTimeout;
  clearTimeout?: typeof clearTimeout;
}

export interface Auth {
  /** navigates to the IdP; comes back to returnTo (default: the current page) */
  login(opts?: { returnTo?: string }): void;
  /** ends the session here and at the IdP (navigates to its end-session URL) */
  logout(): Promise<void>;
  /** the session (cached unless force), or null when logged out */
  getSession(opts?: { background?: boolean; force?: boolean }): Promise<Session | null>;
  /** called on login, logout, refresh and expiry; returns an unsubscribe function */
  onSessionChange(cb: (session: Session | null) => void): () => void;
  /** refreshes now, coordinated across tabs; null when the session ended */
  refresh(): Promise<Session | null>;
  /** resolves when the start-up work (exchange hand-off, first fetch) is done */
  ready(): Promise<Session | null>;
  /** last known session; undefined before the first answer */
  current(): Session | null | undefined;
  /** stops timers and closes the channel */
  destroy(): void;
}

export function createAuth(options?: AuthOptions): Auth;
export default createAuth;
