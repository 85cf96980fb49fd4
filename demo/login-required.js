// CloudFront (and local-gateway) answer 403 with this page for a protected
// path without valid signed cookies; the URL is still the one requested, so
// send the visitor to the login and back here afterwards.
const back = location.pathname + location.search;
const target = `/auth/login?return_to=${encodeURIComponent(back)}`;
document.getElementById('login').href = target;
location.replace(target);
