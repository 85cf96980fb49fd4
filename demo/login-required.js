// CloudFront (and local-gateway) answer 403 with this page for a protected
// path without valid signed cookies; the URL is still the one requested, so
// send the visitor to the login and back here afterwards.
//
// Two guards against loops: the distribution's 403 page also replaces 403s
// from /auth/* (a user refused by ALLOWED_GROUPS), which must not start a new
// login; and a page that is still refused right after a login (the user is
// logged in but not allowed there) shows the link instead of redirecting again.
const back = location.pathname + location.search;
const target = `/auth/login?return_to=${encodeURIComponent(back)}`;
const link = document.getElementById('login');
link.href = target;

const marker = `login-required:${location.pathname}`;
const last = Number(sessionStorage.getItem(marker) ?? 0);
const recently = Date.now() - last < 30_000;
if (location.pathname.startsWith('/auth/') || recently) {
  document.querySelector('p').textContent = location.pathname.startsWith('/auth/')
    ? 'Sign-in was refused for this account.'
    : 'You are signed in, but this page is not available to your account.';
  if (location.pathname.startsWith('/auth/')) link.href = '/';
  link.textContent = location.pathname.startsWith('/auth/') ? 'Back to the site' : 'Try logging in again';
} else {
  sessionStorage.setItem(marker, String(Date.now()));
  location.replace(target);
}
