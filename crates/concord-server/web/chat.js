// The chat screen: servers, channels, messages, members, typing and unread counts,
// kept in one state object, fed by REST answers and gateway events, and drawn with
// textContent only.

import { ApiError } from './api.js';
import { byId, clear, el, showError, when } from './dom.js';

const PAGE = 50;
const TYPING_SHOWN = 10_000;
const TYPING_EVERY = 8_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const byTime = (a, b) => (Date.parse(a.created_at) - Date.parse(b.created_at)) || (a.id < b.id ? -1 : 1);

/** Runs `fn`; a 429 is waited out (up to three times), as the server asks. */
async function patiently(fn) {
  for (let tries = 0; ; tries += 1) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 429 || tries >= 3) throw err;
      await sleep(err.retryAfter * 1000);
    }
  }
}

/** Shows an error from an action a person took (never swallowed). */
function report(err) {
  showError(err instanceof Error ? err.message : String(err));
}

/** The chat screen over a signed-in `session` and its `gateway`. */
export class Chat {
  constructor(session, gateway) {
    this.session = session;
    this.gateway = gateway;
    this.servers = new Map(); // server id -> Server
    this.channels = new Map(); // channel id -> Channel
    this.messages = new Map(); // channel id -> Map(message id -> Message), loaded channels only
    this.complete = new Set(); // channel ids whose whole history is loaded
    this.deleted = new Set(); // message ids deleted while a page was on its way
    this.unread = new Map(); // channel id -> count
    this.members = new Map(); // server id -> Map(user id -> Member)
    this.names = new Map(); // user id -> username
    this.status = new Map(); // user id -> presence status
    this.typing = new Map(); // channel id -> Map(user id -> {name, timer})
    this.lookups = new Map(); // user id -> pending profile lookup
    this.server = null;
    this.channel = null;
    this.lastTyping = 0;
    this.editing = null;
    /** The voice side (voice.js), set once both exist. */
    this.voice = null;
    gateway.addEventListener('dispatch', (e) => this.dispatch(e.detail.t, e.detail.d));
    gateway.addEventListener('state', (e) => this.connection(e.detail));
    this.wire();
  }

  get me() {
    return this.session.user?.id;
  }

  wire() {
    byId('composer').addEventListener('submit', (e) => {
      e.preventDefault();
      this.post().catch(report);
    });
    byId('message-input').addEventListener('input', () => this.typed());
    byId('older').addEventListener('click', () => this.older().catch(report));
    byId('home-btn').addEventListener('click', () => this.home());
    byId('create-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.create().catch(report);
    });
    byId('join-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.accept(byId('join-code').value).catch(report);
    });
    byId('browse-btn').addEventListener('click', () => this.browse().catch(report));
    byId('invite-btn').addEventListener('click', () => this.invite().catch(report));
    byId('channel-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.createChannel().catch(report);
    });
  }

  // ---- the connection ----

  connection(name) {
    const label = { connecting: 'connecting…', connected: 'connected', reconnecting: 'reconnecting…', stopped: 'offline' }[name];
    const node = byId('conn-state');
    node.textContent = label;
    node.dataset.state = name;
  }

  /** A new gateway session: everything shown is reloaded from READY and REST. */
  async ready(d) {
    this.session.user = d.user;
    this.names.set(d.user.id, d.user.username);
    byId('me').textContent = d.user.username;
    this.servers = new Map(d.servers.map((s) => [s.id, s]));
    this.unread = new Map(d.unread_counts.filter((u) => u.unread_count > 0).map((u) => [u.channel_id, u.unread_count]));
    this.messages.clear();
    this.complete.clear();
    this.members.clear();
    for (const id of this.servers.keys()) await patiently(() => this.loadChannels(id)).catch(report);
    if (this.server && !this.servers.has(this.server)) this.server = null;
    this.drawServers();
    if (!byId('admin').hidden) {
      // The admin page stays open across a reconnect.
    } else if (this.server) {
      await this.openServer(this.server, this.channel);
    } else if (this.servers.size > 0 && !location.hash.startsWith('#invite=')) {
      await this.openServer(this.servers.keys().next().value);
    } else {
      this.home();
    }
  }

  dispatch(t, d) {
    switch (t) {
      case 'READY':
        this.ready(d).catch(report);
        break;
      case 'MESSAGE_CREATE':
        this.received(d);
        break;
      case 'MESSAGE_UPDATE':
        this.store(d);
        if (d.channel_id === this.channel) this.drawMessages();
        break;
      case 'MESSAGE_DELETE':
        this.deleted.add(d.id);
        this.messages.get(d.channel_id)?.delete(d.id);
        if (d.channel_id === this.channel) this.drawMessages();
        break;
      case 'TYPING_START':
        this.othersTyping(d);
        break;
      case 'PRESENCE_UPDATE':
        this.status.set(d.user_id, d.status);
        this.drawMembers();
        break;
      case 'MEMBER_JOIN':
      case 'MEMBER_LEAVE':
        this.membership(t, d).catch(report);
        break;
      case 'CHANNEL_CREATE':
      case 'CHANNEL_UPDATE':
        this.channels.set(d.id, d);
        this.drawChannels();
        break;
      case 'CHANNEL_DELETE':
        this.channels.delete(d.id);
        if (this.channel === d.id) this.channel = null;
        this.drawChannels();
        break;
      case 'SERVER_UPDATE':
        this.servers.set(d.id, d);
        this.drawServers();
        break;
      case 'SERVER_DELETE':
        this.forget(d.id);
        break;
      default:
        break;
    }
  }

  async membership(t, d) {
    const mine = d.user.id === this.me;
    if (t === 'MEMBER_JOIN') {
      if (mine && !this.servers.has(d.server_id)) {
        this.servers.set(d.server_id, await this.session.call('GET', `/servers/${d.server_id}`));
        await this.loadChannels(d.server_id);
        this.drawServers();
      }
      this.names.set(d.user.id, d.user.username);
      this.status.set(d.user.id, d.user.status);
      this.members.get(d.server_id)?.set(d.user.id, { user_id: d.user.id, username: d.user.username, status: d.user.status });
    } else if (mine) {
      this.forget(d.server_id);
      return;
    } else {
      this.members.get(d.server_id)?.delete(d.user.id);
    }
    if (d.server_id === this.server) this.drawMembers();
  }

  forget(serverId) {
    this.servers.delete(serverId);
    for (const [id, channel] of this.channels) if (channel.server_id === serverId) this.channels.delete(id);
    if (this.server === serverId) {
      this.server = null;
      this.channel = null;
      this.home();
    }
    this.drawServers();
  }

  // ---- servers and channels ----

  async loadChannels(serverId) {
    const list = await this.session.call('GET', `/servers/${serverId}/channels`);
    for (const [id, channel] of this.channels) if (channel.server_id === serverId) this.channels.delete(id);
    for (const channel of list) this.channels.set(channel.id, channel);
  }

  async openServer(serverId, channelId = null) {
    this.server = serverId;
    byId('admin').hidden = true;
    byId('admin-btn').classList.remove('active');
    byId('home').hidden = true;
    byId('room').hidden = false;
    const server = this.servers.get(serverId);
    byId('server-name').textContent = server?.name ?? '';
    byId('invite-out').hidden = true;
    byId('channel-form').hidden = server?.owner_id !== this.me;
    this.drawServers();
    const text = this.serverChannels(serverId).filter((c) => c.type === 'text');
    const target = channelId && this.channels.has(channelId) ? channelId : text[0]?.id ?? null;
    await this.openChannel(target);
    this.voice?.loadServer(serverId).catch(() => {});
    if (!this.members.has(serverId)) {
      const list = await patiently(() => this.session.call('GET', `/servers/${serverId}/members`));
      this.members.set(serverId, new Map(list.map((m) => [m.user_id, m])));
      for (const m of list) {
        this.names.set(m.user_id, m.username);
        if (!this.status.has(m.user_id)) this.status.set(m.user_id, m.status);
      }
      this.drawMessages();
    }
    this.drawMembers();
  }

  serverChannels(serverId) {
    return [...this.channels.values()]
      .filter((c) => c.server_id === serverId)
      .sort((a, b) => a.position - b.position || Date.parse(a.created_at) - Date.parse(b.created_at));
  }

  async openChannel(channelId) {
    this.channel = channelId;
    this.editing = null;
    const channel = this.channels.get(channelId);
    byId('channel-name').textContent = channel ? `# ${channel.name}` : 'No channel yet';
    byId('composer').hidden = !channel;
    this.drawChannels();
    this.drawTyping();
    if (!channel) {
      this.drawMessages();
      return;
    }
    if (!this.messages.has(channelId)) {
      const page = await patiently(() => this.session.call('GET', `/channels/${channelId}/messages?limit=${PAGE}`));
      this.messages.set(channelId, this.messages.get(channelId) ?? new Map());
      for (const m of page) this.store(m);
      if (page.length < PAGE) this.complete.add(channelId);
    }
    this.drawMessages(true);
    this.read(channelId);
    byId('message-input').focus();
  }

  read(channelId) {
    if (!this.unread.has(channelId)) return;
    this.unread.delete(channelId);
    this.drawChannels();
    this.drawServers();
    this.session.call('POST', `/channels/${channelId}/ack`).catch(report);
  }

  drawServers() {
    const list = byId('server-list');
    clear(list);
    for (const server of this.servers.values()) {
      const unread = this.serverChannels(server.id).reduce((n, c) => n + (this.unread.get(c.id) ?? 0), 0);
      list.append(el('li', {},
        el('button', {
          className: server.id === this.server ? 'server active' : 'server',
          title: server.name,
          data: { id: server.id },
          on: { click: () => this.openServer(server.id).catch(report) },
        }, server.name.slice(0, 2), unread > 0 && el('span', { className: 'badge' }, String(unread)))));
    }
  }

  drawChannels() {
    const list = byId('channel-list');
    clear(list);
    if (!this.server) return;
    for (const channel of this.serverChannels(this.server)) {
      const unread = this.unread.get(channel.id) ?? 0;
      if (channel.type === 'voice') {
        // A voice channel is joined (gateway audio, voice.js), not opened.
        const joined = this.voice?.channel === channel.id;
        list.append(el('li', {},
          el('button', {
            className: joined ? 'channel voice joined' : 'channel voice',
            disabled: !this.voice,
            title: joined ? 'You are in this voice channel' : 'Join this voice channel',
            data: { id: channel.id, type: 'voice' },
            on: { click: () => this.voice.join(channel.id).catch(report) },
          }, `🔊 ${channel.name}`),
          this.voice?.roster(channel.id)));
        continue;
      }
      list.append(el('li', {},
        el('button', {
          className: channel.id === this.channel ? 'channel active' : 'channel',
          title: channel.topic ?? '',
          data: { id: channel.id },
          on: { click: () => this.openChannel(channel.id).catch(report) },
        }, `# ${channel.name}`, unread > 0 && el('span', { className: 'badge' }, String(unread)))));
    }
  }

  async createChannel() {
    const input = byId('channel-new');
    const name = input.value.trim();
    if (!name) return;
    const channel = await this.session.call('POST', `/servers/${this.server}/channels`, { name, type: 'text' });
    input.value = '';
    this.channels.set(channel.id, channel);
    await this.openChannel(channel.id);
  }

  // ---- the home panel: create, join, browse ----

  /** Leaves the open server for a page of its own (home, admin) titled `title`. */
  away(title) {
    this.server = null;
    this.channel = null;
    byId('room').hidden = true;
    byId('home').hidden = true;
    byId('admin').hidden = true;
    byId('admin-btn').classList.remove('active');
    byId('server-name').textContent = title;
    byId('channel-form').hidden = true;
    clear(byId('channel-list'));
    clear(byId('member-list'));
    this.drawServers();
  }

  home() {
    this.away('Home');
    byId('home').hidden = false;
    const invite = location.hash.match(/^#invite=([A-Za-z0-9]+)/);
    if (invite) byId('join-code').value = invite[1];
    this.drawServers();
  }

  async create() {
    const input = byId('create-name');
    const name = input.value.trim();
    if (!name) throw new Error('Give the server a name.');
    const server = await this.session.call('POST', '/servers', { name });
    // A new server has no channel: give it one to talk in.
    const channel = await this.session.call('POST', `/servers/${server.id}/channels`, { name: 'general', type: 'text' });
    input.value = '';
    this.servers.set(server.id, server);
    this.channels.set(channel.id, channel);
    await this.openServer(server.id, channel.id);
  }

  async accept(text) {
    const code = text.trim().split(/[#=/]/).filter(Boolean).pop();
    if (!code) throw new Error('Paste an invite code or link.');
    const { server_id: serverId } = await this.session.call('POST', `/invites/${encodeURIComponent(code)}/accept`);
    if (location.hash.startsWith('#invite=')) history.replaceState(null, '', location.pathname);
    byId('join-code').value = '';
    await this.joined(serverId);
  }

  async joined(serverId) {
    this.servers.set(serverId, await this.session.call('GET', `/servers/${serverId}`));
    await this.loadChannels(serverId);
    this.members.delete(serverId);
    await this.openServer(serverId);
  }

  async browse() {
    const list = byId('browse-list');
    clear(list);
    const servers = await this.session.call('GET', '/servers/browse');
    if (servers.length === 0) list.append(el('li', {}, 'No public servers yet.'));
    for (const server of servers) {
      const member = this.servers.has(server.id);
      const join = el('button', {
        disabled: member || server.require_invite,
        on: {
          click: async () => {
            try {
              await this.session.call('POST', `/servers/${server.id}/join`);
              await this.joined(server.id);
            } catch (err) {
              report(err);
            }
          },
        },
      }, member ? 'Joined' : server.require_invite ? 'Invite only' : 'Join');
      list.append(el('li', {}, el('span', {}, `${server.name} · ${server.member_count} members `), join));
    }
  }

  async invite() {
    const invite = await this.session.call('POST', `/servers/${this.server}/invites`, {});
    const link = `${location.origin}/#invite=${invite.code}`;
    const out = byId('invite-out');
    out.hidden = false;
    byId('invite-code').value = invite.code;
    byId('invite-link').value = link;
  }

  // ---- messages ----

  store(message) {
    if (this.deleted.has(message.id) || message.deleted || message.thread_id) return;
    this.messages.get(message.channel_id)?.set(message.id, message);
  }

  received(message) {
    this.store(message);
    this.stopTyping(message.channel_id, message.author_id);
    if (message.author_id !== this.me) {
      if (message.channel_id === this.channel && !document.hidden) {
        this.session.call('POST', `/channels/${message.channel_id}/ack`).catch(() => {});
      } else {
        this.unread.set(message.channel_id, (this.unread.get(message.channel_id) ?? 0) + 1);
        this.drawChannels();
        this.drawServers();
      }
    }
    if (message.channel_id === this.channel) this.drawMessages();
  }

  async post() {
    const input = byId('message-input');
    const content = input.value.trim();
    if (!content || !this.channel) return;
    const message = await this.session.call('POST', `/channels/${this.channel}/messages`, { content });
    input.value = '';
    this.lastTyping = 0;
    this.received(message);
  }

  async older() {
    const channelId = this.channel;
    const loaded = [...(this.messages.get(channelId)?.values() ?? [])].sort(byTime);
    if (loaded.length === 0) return;
    const page = await this.session.call('GET', `/channels/${channelId}/messages?limit=${PAGE}&before=${loaded[0].id}`);
    for (const m of page) this.store(m);
    if (page.length < PAGE) this.complete.add(channelId);
    if (channelId !== this.channel) return;
    const box = byId('scroller');
    const fromBottom = box.scrollHeight - box.scrollTop;
    this.drawMessages();
    box.scrollTop = box.scrollHeight - fromBottom;
  }

  name(userId) {
    if (!userId) return 'deleted user';
    const known = this.names.get(userId);
    if (known) return known;
    if (!this.lookups.has(userId)) {
      this.lookups.set(userId, this.session.call('GET', `/users/${userId}`).then((user) => {
        this.names.set(userId, user.username);
        this.drawMessages();
      }).catch(() => {}));
    }
    return 'someone';
  }

  drawMessages(toBottom = false) {
    const list = byId('messages');
    const box = byId('scroller');
    const atBottom = toBottom || box.scrollHeight - box.scrollTop - box.clientHeight < 40;
    clear(list);
    const loaded = this.messages.get(this.channel);
    byId('older').hidden = !loaded || this.complete.has(this.channel) || loaded.size === 0;
    if (!loaded) return;
    for (const message of [...loaded.values()].sort(byTime)) list.append(this.messageItem(message));
    if (atBottom) box.scrollTop = box.scrollHeight;
  }

  messageItem(message) {
    const own = message.author_id === this.me;
    const item = el('li', { className: own ? 'message own' : 'message', data: { id: message.id } },
      el('span', { className: 'author' }, this.name(message.author_id)),
      el('time', { className: 'time', dateTime: message.created_at }, when(message.created_at)),
      message.edited_at && el('span', { className: 'edited' }, '(edited)'));
    if (this.editing === message.id) {
      const input = el('input', { className: 'edit-input', value: message.content, maxLength: 4000 });
      const form = el('form', {
        className: 'edit',
        on: {
          submit: (e) => {
            e.preventDefault();
            this.edit(message, input.value).catch(report);
          },
        },
      }, input, el('button', { type: 'submit' }, 'Save'),
      el('button', { type: 'button', on: { click: () => { this.editing = null; this.drawMessages(); } } }, 'Cancel'));
      input.addEventListener('keydown', (e) => {
        if (e.key === 'Escape') {
          this.editing = null;
          this.drawMessages();
        }
      });
      item.append(form);
      queueMicrotask(() => input.focus());
      return item;
    }
    item.append(el('p', { className: 'content' }, message.content));
    if (own) {
      item.append(el('span', { className: 'actions' },
        el('button', { className: 'edit-btn', on: { click: () => { this.editing = message.id; this.drawMessages(); } } }, 'Edit'),
        el('button', { className: 'delete-btn', on: { click: () => this.remove(message).catch(report) } }, 'Delete')));
    }
    return item;
  }

  async edit(message, content) {
    const text = content.trim();
    if (!text) throw new Error('A message cannot be empty: delete it instead.');
    const updated = await this.session.call('PATCH', `/messages/${message.id}`, { content: text });
    this.editing = null;
    this.store(updated);
    this.drawMessages();
  }

  async remove(message) {
    await this.session.call('DELETE', `/messages/${message.id}`);
    this.deleted.add(message.id);
    this.messages.get(message.channel_id)?.delete(message.id);
    this.drawMessages();
  }

  // ---- typing ----

  typed() {
    const now = Date.now();
    if (!this.channel || now - this.lastTyping < TYPING_EVERY) return;
    if (this.gateway.send('TYPING_START', { channel_id: this.channel })) this.lastTyping = now;
  }

  othersTyping(d) {
    if (d.user_id === this.me) return;
    const channel = this.typing.get(d.channel_id) ?? new Map();
    this.typing.set(d.channel_id, channel);
    clearTimeout(channel.get(d.user_id)?.timer);
    const timer = setTimeout(() => this.stopTyping(d.channel_id, d.user_id), TYPING_SHOWN);
    channel.set(d.user_id, { name: d.username ?? this.name(d.user_id), timer });
    if (d.channel_id === this.channel) this.drawTyping();
  }

  stopTyping(channelId, userId) {
    const channel = this.typing.get(channelId);
    if (!channel?.has(userId)) return;
    clearTimeout(channel.get(userId).timer);
    channel.delete(userId);
    if (channelId === this.channel) this.drawTyping();
  }

  drawTyping() {
    const names = [...(this.typing.get(this.channel)?.values() ?? [])].map((t) => t.name);
    const text = names.length === 0 ? ''
      : names.length === 1 ? `${names[0]} is typing…`
        : names.length <= 3 ? `${names.join(', ')} are typing…` : 'Several people are typing…';
    byId('typing').textContent = text;
  }

  // ---- members ----

  drawMembers() {
    const list = byId('member-list');
    clear(list);
    const members = this.members.get(this.server);
    if (!members) return;
    const rank = { online: 0, dnd: 1, away: 2, offline: 3 };
    const sorted = [...members.values()].sort((a, b) =>
      (rank[this.status.get(a.user_id)] ?? 3) - (rank[this.status.get(b.user_id)] ?? 3)
      || a.username.localeCompare(b.username));
    for (const member of sorted) {
      const status = this.status.get(member.user_id) ?? 'offline';
      list.append(el('li', { className: 'member', data: { id: member.user_id, status } },
        el('span', { className: `dot ${status}`, title: status }),
        el('span', { className: 'name' }, member.nickname ?? member.username)));
    }
  }
}
