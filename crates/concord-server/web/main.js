// Entry point: the sign-in screen, then the chat screen over a live gateway.

import { Admin } from './admin.js';
import { Chat } from './chat.js';
import { byId, showError } from './dom.js';
import { Gateway } from './gateway.js';
import { Session } from './session.js';
import { Voice } from './voice.js';

const session = new Session();
const gateway = new Gateway(session);
const chat = new Chat(session, gateway);
const admin = new Admin(session, gateway, chat);
const voice = new Voice(session, gateway, chat);
chat.voice = voice;

function screen(name) {
  byId('login').hidden = name !== 'login';
  byId('chat').hidden = name !== 'chat';
}

function signedIn() {
  showError('');
  screen('chat');
  gateway.start();
}

session.addEventListener('signedout', (event) => {
  gateway.stop();
  screen('login');
  showError(event.detail ? `You are signed out: ${event.detail} Sign in again.` : 'You are signed out. Sign in again.');
});

async function submit(action) {
  const username = byId('username').value.trim();
  const password = byId('password').value;
  const busy = [byId('login-btn'), byId('register-btn')];
  busy.forEach((b) => { b.disabled = true; });
  try {
    if (action === 'register') await session.register(username, password, byId('register-invite').value.trim());
    else await session.login(username, password);
    byId('password').value = '';
    signedIn();
  } catch (err) {
    showError(err.status === 401 && action === 'login' ? 'Wrong username or password.' : err.message);
  } finally {
    busy.forEach((b) => { b.disabled = false; });
  }
}

byId('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  submit('login');
});
byId('register-btn').addEventListener('click', () => {
  if (byId('login-form').reportValidity()) submit('register');
});
byId('logout-btn').addEventListener('click', () => {
  session.logout().catch((err) => showError(err.message));
});

const invite = location.hash.match(/^#invite=([A-Za-z0-9]+)/);
if (invite) byId('register-invite').value = invite[1];

if (session.remembered) {
  session.restore().then(signedIn, (err) => {
    screen('login');
    if (err.status !== 401 && err.status !== 403) showError(err.message);
  });
} else {
  screen('login');
}

// For the browser test and the curious: the running client.
window.concord = { session, gateway, chat, admin, voice };
