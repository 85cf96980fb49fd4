// A page only for logged-in users: logged out, it sends the visitor to log in
// and brings them back here.
import { auth } from './config.js';

const $ = (id) => document.getElementById(id);

auth.onSessionChange((session) => {
  if (!session) {
    $('status').textContent = 'Redirecting to login…';
    $('members').hidden = true;
    auth.login(); // comes back to this page
    return;
  }
  $('status').textContent = '';
  $('user-name').textContent = session.user.name ?? session.user.sub;
  $('members').hidden = false;
});

auth.ready().catch((err) => { $('status').textContent = `Could not reach the login service (${err.message})`; });
