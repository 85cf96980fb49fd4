// The start page: who is logged in, and the session's timers counting down.
import { auth } from './config.js';

const $ = (id) => document.getElementById(id);
let current = null;

function countdown(epochSeconds) {
  const left = Math.max(0, Math.round(epochSeconds - Date.now() / 1000));
  const h = Math.floor(left / 3600);
  const m = Math.floor((left % 3600) / 60);
  const s = left % 60;
  const mmss = `${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
  return h ? `${h}:${mmss}` : mmss;
}

function tick() {
  if (!current) return;
  $('idle-expiry').textContent = countdown(current.idle_expires_at);
  $('session-expiry').textContent = countdown(current.session_expires_at);
  $('token-expiry').textContent = countdown(current.expires_at - 60);
}

function render(session) {
  current = session;
  $('logged-in').hidden = !session;
  $('logged-out').hidden = !!session;
  if (session) {
    const { user } = session;
    $('status').textContent = `Logged in as ${user.name ?? user.preferred_username ?? user.sub}`;
    $('user-name').textContent = user.name ?? user.preferred_username ?? user.sub;
    $('user-email').textContent = user.email ?? '—';
    $('user-groups').textContent = (user.groups ?? []).join(', ') || '—';
    tick();
  } else {
    $('status').textContent = 'Logged out';
  }
}

auth.onSessionChange(render);
setInterval(tick, 1000);

$('login').addEventListener('click', () => auth.login());
$('logout').addEventListener('click', () => { $('logout').disabled = true; auth.logout(); });
$('refresh').addEventListener('click', () => { auth.refresh().catch((err) => { $('status').textContent = String(err); }); });

auth.ready().catch((err) => { $('status').textContent = `Could not reach the login service (${err.message})`; });
