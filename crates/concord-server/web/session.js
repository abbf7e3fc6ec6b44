// The login: the access token lives in memory only, the refresh token in localStorage
// so a reload or another tab stays signed in. The server rotates refresh tokens and
// ends the whole login when a replaced one is used again, so every refresh, from any
// tab, runs under one lock and reads the newest token inside it: no token is ever
// presented twice.

import { ApiError, call } from './api.js';

const KEY = 'concord.refresh_token';
const LOCK = 'concord.refresh';
const LEASE = 'concord.refresh_lease';
/** Refresh this long before the access token expires (ms). */
const AHEAD = 60_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `fn` while holding the cross-tab refresh lock. */
async function withLock(fn) {
  if (navigator.locks) return navigator.locks.request(LOCK, fn);
  // No Web Locks API (a page over plain http from a non-loopback address): a lease in
  // localStorage, taken when free or stale and confirmed after a moment.
  const me = `${Date.now()}-${Math.random()}`;
  for (;;) {
    const lease = JSON.parse(localStorage.getItem(LEASE) || 'null');
    if (!lease || lease.until < Date.now()) {
      localStorage.setItem(LEASE, JSON.stringify({ owner: me, until: Date.now() + 15_000 }));
      await sleep(50);
      if (JSON.parse(localStorage.getItem(LEASE) || 'null')?.owner === me) {
        try {
          return await fn();
        } finally {
          localStorage.removeItem(LEASE);
        }
      }
    }
    await sleep(100 + Math.random() * 200);
  }
}

/** `text` as a sentence: capitalised, with a full stop. */
function sentence(text) {
  const t = String(text ?? '').trim();
  if (!t) return null;
  const s = t[0].toUpperCase() + t.slice(1);
  return /[.!?]$/.test(s) ? s : `${s}.`;
}

/** Seconds since the epoch at which a JWT expires (its `exp` claim), or null. */
function expiry(jwt) {
  try {
    const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    return JSON.parse(atob(part)).exp ?? null;
  } catch {
    return null;
  }
}

/**
 * The signed-in user. Dispatches `token` (a new access token is in `access`) and
 * `signedout` (the login ended: logged out here or in another tab, or refused).
 */
export class Session extends EventTarget {
  constructor() {
    super();
    this.access = null;
    this.user = null;
    this.timer = null;
    window.addEventListener('storage', (event) => {
      if (event.key === KEY && event.newValue === null && this.access) this.end();
    });
  }

  /** Whether a refresh token from an earlier visit is stored. */
  get remembered() {
    return localStorage.getItem(KEY) !== null;
  }

  /** Creates an account and signs in. */
  async register(username, password, inviteCode) {
    const body = { username, password };
    if (inviteCode) body.invite_code = inviteCode;
    this.adopt(await call('POST', '/auth/register', { body }));
  }

  /** Signs in. */
  async login(username, password) {
    this.adopt(await call('POST', '/auth/login', { body: { username, password } }));
  }

  /** Signs in with the stored refresh token; then loads the user. */
  async restore() {
    await this.refresh();
    this.user = await this.call('GET', '/users/@me');
  }

  /** Ends this login on the server and here. */
  async logout() {
    const refresh = localStorage.getItem(KEY);
    try {
      if (this.access && refresh) {
        await call('POST', '/auth/logout', { body: { refresh_token: refresh }, token: this.access });
      }
    } finally {
      localStorage.removeItem(KEY);
      this.end();
    }
  }

  /** A REST call with the access token; one refresh and retry when it was refused. */
  async call(method, path, body) {
    try {
      return await call(method, path, { body, token: this.access });
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 401 || !this.remembered) throw err;
      await this.refresh();
      return call(method, path, { body, token: this.access });
    }
  }

  /**
   * Trades the stored refresh token for a new pair, under the lock. A refusal (401,
   * 403) ends the login; a network failure keeps it and retries later.
   */
  async refresh() {
    return withLock(async () => {
      // Read inside the lock: another tab may have rotated it a moment ago.
      const token = localStorage.getItem(KEY);
      if (!token) {
        this.end();
        throw new ApiError(401, 'You are signed out.');
      }
      try {
        this.adopt(await call('POST', '/auth/refresh', { body: { refresh_token: token } }));
      } catch (err) {
        if (err.status === 401 || err.status === 403) {
          localStorage.removeItem(KEY);
          this.end(sentence(err.message));
        } else {
          this.schedule(15_000);
        }
        throw err;
      }
    });
  }

  adopt(data) {
    localStorage.setItem(KEY, data.refresh_token);
    this.access = data.access_token;
    if (data.user) this.user = data.user;
    const exp = expiry(this.access);
    this.schedule(exp ? exp * 1000 - Date.now() - AHEAD : 10 * 60_000);
    this.dispatchEvent(new Event('token'));
  }

  schedule(ms) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.refresh().catch(() => {}), Math.max(5_000, ms));
  }

  /** Ends the login here (the stored refresh token too), saying why. */
  signOut(reason) {
    localStorage.removeItem(KEY);
    this.end(reason);
  }

  /** Forgets the tokens; `signedout` carries `reason` (a sentence) when given. */
  end(reason = null) {
    clearTimeout(this.timer);
    const was = this.access !== null;
    this.access = null;
    this.user = null;
    if (was) this.dispatchEvent(new CustomEvent('signedout', { detail: reason }));
  }
}
