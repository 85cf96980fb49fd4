import type { Auth, Session, User } from './index.js';

export interface UseAuth {
  session: Session | null;
  user: User | null;
  loading: boolean;
  authenticated: boolean;
  login: Auth['login'];
  logout: Auth['logout'];
  refresh: Auth['refresh'];
}

export function useAuth(auth: Auth): UseAuth;
export default useAuth;
