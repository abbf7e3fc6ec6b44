// The admin page, for instance admins only: live counters (polled while the page is
// open), users (search, page, disable/enable, grant/take admin), servers and the
// registration mode. The server checks every call; hiding the page from others is
// only so that they are not shown buttons that would answer 403.

import { byId, clear, el, showError, when } from './dom.js';

/** Seconds between two readings of the counters. */
const POLL = 3_000;
const PER_PAGE = 20;

function report(err) {
  showError(err instanceof Error ? err.message : String(err));
}

/** `n` with thousands separators. */
const count = (n) => Number(n ?? 0).toLocaleString();

/** `1d 2h`, `3h 4m` or `5m 6s`. */
function duration(secs) {
  const d = Math.floor(secs / 86_400);
  const h = Math.floor((secs % 86_400) / 3_600);
  const m = Math.floor((secs % 3_600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  return `${m}m ${secs % 60}s`;
}

/** One paged, searchable list (`/admin/users` or `/admin/servers`). */
class Pager {
  constructor(prefix, load) {
    this.prefix = prefix;
    this.load = load;
    this.page = 1;
    this.total = 0;
    this.search = '';
    byId(`${prefix}-search-form`).addEventListener('submit', (e) => {
      e.preventDefault();
      this.search = byId(`${prefix}-search`).value.trim();
      this.page = 1;
      this.load().catch(report);
    });
    byId(`${prefix}-prev`).addEventListener('click', () => {
      this.page = Math.max(1, this.page - 1);
      this.load().catch(report);
    });
    byId(`${prefix}-next`).addEventListener('click', () => {
      this.page += 1;
      this.load().catch(report);
    });
  }

  query() {
    const params = new URLSearchParams({ page: String(this.page), per_page: String(PER_PAGE) });
    if (this.search) params.set('search', this.search);
    return params.toString();
  }

  /** Records the page an answer is for and draws the pager. */
  answered(page, total) {
    this.page = page;
    this.total = total;
    const pages = Math.max(1, Math.ceil(total / PER_PAGE));
    byId(`${this.prefix}-page`).textContent = `page ${page} of ${pages} · ${count(total)} in all`;
    byId(`${this.prefix}-prev`).disabled = page <= 1;
    byId(`${this.prefix}-next`).disabled = page >= pages;
  }
}

/** The admin page of a signed-in `session`; `chat` is told when the page takes over. */
export class Admin {
  constructor(session, gateway, chat) {
    this.session = session;
    this.chat = chat;
    this.timer = null;
    this.last = null; // the previous counters reading: {at, deliveries}
    this.users = new Pager('users', () => this.loadUsers());
    this.serversList = new Pager('servers', () => this.loadServers());
    gateway.addEventListener('dispatch', (e) => {
      if (e.detail.t === 'READY') this.allowed(e.detail.d.user.is_admin === true);
    });
    session.addEventListener('signedout', () => this.allowed(false));
    byId('admin-btn').addEventListener('click', () => this.open().catch(report));
    byId('registration-mode').addEventListener('change', (e) => this.setMode(e.target.value).catch(report));
  }

  /** Shows or hides the way in; closes the page for someone no longer an admin. */
  allowed(yes) {
    byId('admin-btn').hidden = !yes;
    if (!yes) this.close();
  }

  get shown() {
    return !byId('admin').hidden;
  }

  async open() {
    this.chat.away('Administration');
    byId('admin').hidden = false;
    byId('admin-btn').classList.add('active');
    this.last = null;
    clearTimeout(this.timer);
    await Promise.all([this.poll(), this.loadMode(), this.loadUsers(), this.loadServers()]);
  }

  close() {
    clearTimeout(this.timer);
    this.timer = null;
    byId('admin').hidden = true;
    byId('admin-btn').classList.remove('active');
  }

  // ---- live counters ----

  /** Reads the counters now and again every few seconds while the page is shown. */
  async poll() {
    clearTimeout(this.timer);
    if (!this.shown) return;
    try {
      const [counters, stats] = await Promise.all([
        this.session.call('GET', '/admin/counters'),
        this.session.call('GET', '/admin/stats'),
      ]);
      if (this.shown) this.drawCounters(counters, stats);
    } catch (err) {
      if (err.status === 403) {
        this.allowed(false);
        this.chat.home();
      }
      report(err);
      if (err.status === 401 || err.status === 403) return;
    }
    if (this.shown) this.timer = setTimeout(() => this.poll(), POLL);
  }

  drawCounters(counters, stats) {
    const now = performance.now();
    let rate = '…';
    if (this.last && now > this.last.at) {
      const perSec = ((counters.deliveries - this.last.deliveries) * 1000) / (now - this.last.at);
      rate = perSec >= 10 ? count(Math.round(perSec)) : perSec.toFixed(1);
    }
    this.last = { at: now, deliveries: counters.deliveries };
    const shown = [
      ['connections', 'Connections', count(counters.connections)],
      ['sessions', 'Sessions', count(counters.sessions)
        + (counters.sessions_detached ? ` (+${count(counters.sessions_detached)} waiting to resume)` : '')],
      ['rate', 'Deliveries/s', rate],
      ['deliveries', 'Deliveries', count(counters.deliveries)],
      ['drops', 'Queue drops', count(counters.outbox_dropped)],
      ['slow', 'Slow clients closed', count(counters.slow_consumer_closes)],
      ['users', 'Users', count(stats.total_users)],
      ['servers', 'Servers', count(stats.total_servers)],
      ['messages', 'Messages', count(stats.total_messages)],
      ['db', 'Database ping', `${stats.db_latency_ms} ms`],
      ['uptime', 'Uptime', duration(counters.uptime_secs)],
    ];
    const box = byId('admin-counters');
    clear(box);
    for (const [key, label, value] of shown) {
      box.append(el('div', { className: 'counter', data: { key } },
        el('dt', {}, label), el('dd', {}, value)));
    }
    byId('admin-counters-at').textContent = `updated ${new Date().toLocaleTimeString()}`;
  }

  // ---- registration mode ----

  async loadMode() {
    const settings = await this.session.call('GET', '/admin/settings');
    byId('registration-mode').value = settings.registration_mode;
    byId('registration-mode').dataset.mode = settings.registration_mode;
  }

  async setMode(mode) {
    const select = byId('registration-mode');
    select.disabled = true;
    try {
      const settings = await this.session.call('PATCH', '/admin/settings', { registration_mode: mode });
      select.value = settings.registration_mode;
      select.dataset.mode = settings.registration_mode;
      showError('');
    } catch (err) {
      select.value = select.dataset.mode ?? '';
      throw err;
    } finally {
      select.disabled = false;
    }
  }

  // ---- users ----

  async loadUsers() {
    const answer = await this.session.call('GET', `/admin/users?${this.users.query()}`);
    this.users.answered(answer.page, answer.total);
    const body = byId('admin-users');
    clear(body);
    if (answer.users.length === 0) body.append(el('tr', {}, el('td', { colSpan: 5 }, 'No users match.')));
    for (const user of answer.users) body.append(this.userRow(user));
  }

  userRow(user) {
    const me = user.id === this.session.user?.id;
    const tags = el('span', { className: 'tags' },
      user.is_admin && el('span', { className: 'tag admin' }, 'admin'),
      user.disabled && el('span', { className: 'tag disabled' }, 'disabled'),
      me && el('span', { className: 'tag' }, 'you'));
    const disable = el('button', {
      type: 'button',
      className: user.disabled ? 'enable-btn' : 'disable-btn danger',
      disabled: me,
      title: me ? 'You cannot disable yourself' : user.disabled ? 'Let this account sign in again'
        : 'Refuse every token of this account and close its sessions now',
      on: { click: () => this.change(user, { disabled: !user.disabled }).catch(report) },
    }, user.disabled ? 'Enable' : 'Disable');
    const admin = el('button', {
      type: 'button',
      className: user.is_admin ? 'demote-btn' : 'promote-btn',
      disabled: me,
      title: me ? 'Another admin must take this from you' : '',
      on: { click: () => this.change(user, { is_admin: !user.is_admin }).catch(report) },
    }, user.is_admin ? 'Remove admin' : 'Make admin');
    return el('tr', { data: { id: user.id, username: user.username, disabled: String(user.disabled), admin: String(user.is_admin) } },
      el('td', {}, el('span', { className: 'name' }, user.username), ' ', tags),
      el('td', {}, when(user.created_at)),
      el('td', { className: 'num' }, count(user.server_count)),
      el('td', { className: 'num' }, count(user.message_count)),
      el('td', { className: 'actions' }, disable, admin));
  }

  async change(user, patch) {
    const updated = await this.session.call('PATCH', `/admin/users/${user.id}`, patch);
    showError('');
    const row = byId('admin-users').querySelector(`tr[data-id="${CSS.escape(user.id)}"]`);
    row?.replaceWith(this.userRow(updated));
  }

  // ---- servers ----

  async loadServers() {
    const answer = await this.session.call('GET', `/admin/servers?${this.serversList.query()}`);
    this.serversList.answered(answer.page, answer.total);
    const body = byId('admin-servers');
    clear(body);
    if (answer.servers.length === 0) body.append(el('tr', {}, el('td', { colSpan: 6 }, 'No servers match.')));
    for (const server of answer.servers) {
      body.append(el('tr', { data: { id: server.id } },
        el('td', {}, server.name, server.is_public ? el('span', { className: 'tag' }, 'public') : null),
        el('td', {}, server.owner_username),
        el('td', { className: 'num' }, count(server.member_count)),
        el('td', { className: 'num' }, count(server.channel_count)),
        el('td', { className: 'num' }, count(server.message_count)),
        el('td', {}, when(server.created_at))));
    }
  }
}
