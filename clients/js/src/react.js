// React binding: `const { session, loading, login, logout, refresh } = useAuth(auth)`.
// React is a peer dependency of this entry only; the core never imports it.
import { useCallback, useEffect, useState } from 'react';

/**
 * @typedef {import('./index.js').Auth} Auth
 * @typedef {import('./index.js').Session} Session
 */

/**
 * Subscribes a component to the session of an `Auth` made by `createAuth`
 * (create it once, outside components).
 * @param {Auth} auth
 * @returns {{
 *   session: Session | null,
 *   user: Session['user'] | null,
 *   loading: boolean,
 *   authenticated: boolean,
 *   login: Auth['login'],
 *   logout: Auth['logout'],
 *   refresh: Auth['refresh'],
 * }}
 */
export function useAuth(auth) {
  const initial = auth.current();
  const [session, setSession] = useState(initial === undefined ? null : initial);
  const [loading, setLoading] = useState(initial === undefined);

  useEffect(() => {
    let live = true;
    const off = auth.onSessionChange((s) => {
      if (!live) return;
      setSession(s);
      setLoading(false);
    });
    const known = auth.current();
    if (known !== undefined) {
      setSession(known);
      setLoading(false);
    } else {
      auth.ready().then(
        (s) => { if (live) { setSession(s); setLoading(false); } },
        () => { if (live) setLoading(false); },
      );
    }
    return () => { live = false; off(); };
  }, [auth]);

  const login = useCallback((opts) => auth.login(opts), [auth]);
  const logout = useCallback(() => auth.logout(), [auth]);
  const refresh = useCallback(() => auth.refresh(), [auth]);

  return {
    session,
    user: session ? session.user : null,
    loading,
    authenticated: !!session,
    login,
    logout,
    refresh,
  };
}

export default useAuth;
