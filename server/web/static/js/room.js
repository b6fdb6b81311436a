// The room page: chat, who is here, the DJ booth, votes, moderation and the notification bell,
// over one live socket (live.js) and the REST API (api.js).

import { ApiError, api, currentUser, get, post, query, token } from "./api.js";
import { $, clock, el, fill, say } from "./dom.js";
import { LiveRoom } from "./live.js";
import { Bell } from "./bell.js";

const WINDOW = 200; // messages kept in the DOM at most
const PAGE = 50; // messages shown or fetched per step when scrolling
const MEMORY = 5000; // messages kept in memory at most
const EMOJI = { clap: "👏", fire: "🔥", heart: "❤️", star: "⭐", wave: "👋" };
const MENTION = /@([A-Za-z0-9_]{3,30})/g;

const status = $("#status");
const scroller = $("#scroller");
const list = $("#messages");

const view = {
  room: null,
  me: null, // welcome.you
  names: new Map(), // user_id -> username
  presence: new Map(), // user_id -> username
  guests: 0,
  session: null,
  tally: null, // vote.tally of the playing item
  myVote: null,
  clockSkew: 0, // server ms - local ms
  pinned: [],
  replyTo: null,
  mine: new Set(), // "messageId:emoji" I reacted with (as seen live)
  // Chat: every known message in display order, and which slice of it is in the DOM.
  msgs: [],
  byId: new Map(),
  lo: 0,
  hi: 0,
  following: true,
  unseen: 0,
  historyCursor: undefined, // undefined: REST history not read yet; null: read to the end
  loadingOlder: false,
};

let live;
let flushQueued = false;
const incoming = [];

// ---------- chat: the message store and its DOM window ----------

function isMod() {
  const role = view.me && view.me.role;
  return role === "owner" || role === "moderator" || (currentUser() || {}).role === "admin" || (currentUser() || {}).role === "super_admin";
}

function textWithMentions(text) {
  const out = [];
  let last = 0;
  for (const match of text.matchAll(MENTION)) {
    if (match.index > last) out.push(text.slice(last, match.index));
    const mine = view.me && match[1].toLowerCase() === (view.me.username || "").toLowerCase();
    out.push(el("mark", { class: mine ? "mention me" : "mention" }, match[0]));
    last = match.index + match[0].length;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

function reactionButtons(m) {
  return Object.entries(m.reactions || {})
    .filter(([, n]) => n > 0)
    .map(([emoji, n]) => {
      const mine = view.mine.has(`${m.id}:${emoji}`);
      return el(
        "button",
        {
          type: "button",
          class: "reaction",
          dataset: { action: "toggle-react", emoji },
          "aria-pressed": String(mine),
          "aria-label": `${emoji}: ${n}`,
        },
        `${EMOJI[emoji] || emoji} ${n}`,
      );
    });
}

function renderMessage(m) {
  if (m.hidden) {
    return el("li", { class: "msg hidden-msg", id: `m-${m.id}`, dataset: { id: m.id } }, "A message from someone you blocked.");
  }
  const me = view.me && view.me.user_id;
  const mentionsMe = me && (m.mentions || []).includes(me);
  const parent = m.reply_to ? view.byId.get(m.reply_to) : null;
  const mod = isMod();
  const actions = [
    me && el("button", { type: "button", class: "link", dataset: { action: "reply" } }, "Reply"),
    me &&
      el(
        "details",
        { class: "react-picker" },
        el("summary", { "aria-label": "Add a reaction" }, "React"),
        Object.entries(EMOJI).map(([name, char]) =>
          el("button", { type: "button", dataset: { action: "react", emoji: name }, "aria-label": name }, char),
        ),
      ),
    mod && el("button", { type: "button", class: "link", dataset: { action: view.pinned.includes(m.id) ? "unpin" : "pin" } },
      view.pinned.includes(m.id) ? "Unpin" : "Pin"),
    (mod || m.user_id === me) && el("button", { type: "button", class: "link", dataset: { action: "delete" } }, "Delete"),
    me && m.user_id !== me && el("button", { type: "button", class: "link", dataset: { action: "report" } }, "Report"),
  ];
  return el(
    "li",
    { class: mentionsMe ? "msg mentions-me" : "msg", id: `m-${m.id}`, dataset: { id: m.id, seq: m.seq ?? "" } },
    el(
      "div",
      { class: "msg-head" },
      el("span", { class: "author" }, `@${m.username}`),
      el("time", { datetime: new Date(m.at).toISOString() }, new Date(m.at).toLocaleTimeString()),
    ),
    m.reply_to &&
      el("div", { class: "reply-ctx" }, "↪ ", parent ? `@${parent.username}: ${(parent.text || "").slice(0, 80)}` : "a message"),
    el("p", { class: "text" }, textWithMentions(m.text || "")),
    m.track && el("div", { class: "track" }, `🎵 ${m.track.title} — ${m.track.artist}`),
    el("div", { class: "reactions" }, reactionButtons(m)),
    el("div", { class: "actions" }, actions),
  );
}

function rerender(id) {
  const node = document.getElementById(`m-${id}`);
  const m = view.byId.get(id);
  if (node && m) node.replaceWith(renderMessage(m));
}

function remember(m) {
  view.byId.set(m.id, m);
  if (m.user_id && m.username) view.names.set(m.user_id, m.username);
}

/** New live messages: stored now, drawn once per animation frame (a burst costs one layout). */
function addLive(m) {
  if (view.byId.has(m.id)) return;
  remember(m);
  view.msgs.push(m);
  incoming.push(m);
  if (!flushQueued) {
    flushQueued = true;
    requestAnimationFrame(flush);
  }
}

function atBottom() {
  return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 60;
}

function flush() {
  flushQueued = false;
  const fresh = incoming.splice(0).length;
  if (!fresh) return;
  if (!view.following) {
    view.unseen += fresh;
    $("#jump").hidden = false;
    $("#jump").textContent = `${view.unseen} new message${view.unseen === 1 ? "" : "s"} below — jump to latest`;
    forget();
    return;
  }
  // Following the tail: draw whatever is not drawn yet (scrolling may have drawn some already).
  const stick = atBottom();
  const frag = document.createDocumentFragment();
  for (const m of view.msgs.slice(view.hi)) frag.append(renderMessage(m));
  list.append(frag);
  view.hi = view.msgs.length;
  trimTop();
  forget();
  if (stick) scroller.scrollTop = scroller.scrollHeight;
}

function trimTop() {
  let extra = view.hi - view.lo - WINDOW;
  while (extra-- > 0 && list.firstElementChild) {
    list.firstElementChild.remove();
    view.lo += 1;
  }
}

function trimBottom() {
  let extra = view.hi - view.lo - WINDOW;
  while (extra-- > 0 && list.lastElementChild) {
    list.lastElementChild.remove();
    view.hi -= 1;
    view.following = false;
  }
}

/** Keep memory bounded: drop the oldest messages that are not drawn (REST history has them). */
function forget() {
  const drop = Math.min(view.msgs.length - MEMORY, view.lo);
  if (drop <= 0) return;
  for (const m of view.msgs.splice(0, drop)) view.byId.delete(m.id);
  view.lo -= drop;
  view.hi -= drop;
  view.historyCursor = undefined; // read again from the newest page when scrolling up
}

function renderWindow(lo, hi) {
  view.lo = lo;
  view.hi = hi;
  const frag = document.createDocumentFragment();
  for (const m of view.msgs.slice(lo, hi)) frag.append(renderMessage(m));
  list.replaceChildren(frag);
}

function jumpToLatest() {
  renderWindow(Math.max(0, view.msgs.length - WINDOW), view.msgs.length);
  view.following = true;
  view.unseen = 0;
  $("#jump").hidden = true;
  scroller.scrollTop = scroller.scrollHeight;
}

/** Earlier messages: from memory if we have them, else the next page of REST history. */
async function loadOlder() {
  if (view.loadingOlder) return;
  view.loadingOlder = true;
  try {
    if (view.lo === 0) await fetchOlder();
    if (view.lo === 0) return;
    const from = Math.max(0, view.lo - PAGE);
    const before = scroller.scrollHeight;
    const frag = document.createDocumentFragment();
    for (const m of view.msgs.slice(from, view.lo)) frag.append(renderMessage(m));
    list.prepend(frag);
    view.lo = from;
    trimBottom();
    scroller.scrollTop += scroller.scrollHeight - before;
  } finally {
    view.loadingOlder = false;
  }
}

async function fetchOlder() {
  const note = $("#history-status");
  if (view.historyCursor === null) {
    note.textContent = "This is the beginning of the room.";
    return;
  }
  note.textContent = "Loading earlier messages…";
  // Pages come newest first; what we already hold is skipped, what is older goes in front.
  for (let pages = 0; pages < 20; pages++) {
    const page = await get(
      `/api/v1/rooms/${view.room.id}/messages` + query({ limit: PAGE, cursor: view.historyCursor }),
    );
    view.historyCursor = page.next_cursor;
    const older = [];
    for (const item of page.items) {
      const known = view.byId.get(item.id);
      if (known) {
        known.seq = item.seq;
        continue;
      }
      remember(item);
      older.push(item);
    }
    older.sort((a, b) => a.seq - b.seq);
    view.msgs.unshift(...older);
    view.lo += older.length;
    view.hi += older.length;
    if (older.length || page.next_cursor === null) break;
  }
  note.textContent = view.historyCursor === null ? "This is the beginning of the room." : "";
}

scroller.addEventListener("scroll", () => {
  if (scroller.scrollTop < 40) loadOlder();
  if (atBottom()) {
    if (view.hi < view.msgs.length) {
      const to = Math.min(view.msgs.length, view.hi + PAGE);
      const frag = document.createDocumentFragment();
      for (const m of view.msgs.slice(view.hi, to)) frag.append(renderMessage(m));
      list.append(frag);
      view.hi = to;
      trimTop();
    } else if (!view.following) {
      view.following = true;
      view.unseen = 0;
      $("#jump").hidden = true;
    }
  } else if (view.following && view.hi === view.msgs.length && incoming.length === 0) {
    view.following = scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 200;
  }
});
$("#jump").addEventListener("click", jumpToLatest);
$("#older").addEventListener("click", loadOlder);

// ---------- chat: actions ----------

async function op(name, data, options) {
  try {
    return await live.request(name, data, options);
  } catch (e) {
    say(status, e.retry_after_ms ? `${e.message} (try again in ${Math.ceil(e.retry_after_ms / 1000)} s)` : e.message);
    throw e;
  }
}

list.addEventListener("click", async (e) => {
  const button = e.target.closest("[data-action]");
  if (!button) return;
  const li = button.closest("li.msg");
  const id = li && li.dataset.id;
  const m = view.byId.get(id);
  if (!m) return;
  const action = button.dataset.action;
  if (action === "reply") {
    view.replyTo = m;
    $("#replying").hidden = false;
    $("#replying-text").textContent = `Replying to @${m.username}: ${(m.text || "").slice(0, 60)}`;
    $("#composer-text").focus();
  } else if (action === "react" || action === "toggle-react") {
    const emoji = button.dataset.emoji;
    const mine = view.mine.has(`${id}:${emoji}`);
    button.closest("details")?.removeAttribute("open");
    await op(mine ? "chat.unreact" : "chat.react", { message_id: id, emoji }).catch(() => {});
  } else if (action === "pin" || action === "unpin") {
    await op(action === "pin" ? "chat.pin" : "chat.unpin", { message_id: id }).catch(() => {});
  } else if (action === "delete") {
    await op("chat.delete", { message_id: id }).catch(() => {});
  } else if (action === "report") {
    try {
      await post("/api/v1/reports", { target_type: "message", target_id: id, reason: "other" });
      say(status, "Reported. Thank you.", "ok");
    } catch (err) {
      say(status, err.message);
    }
  }
});

$("#cancel-reply").addEventListener("click", () => {
  view.replyTo = null;
  $("#replying").hidden = true;
});

let nonceCounter = 0;
$("#composer").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = $("#composer-text");
  const text = input.value.trim();
  if (!text) return;
  if (!token()) return say(status, "Sign in to chat.");
  const data = { text, nonce: `${Date.now().toString(36)}-${(nonceCounter++).toString(36)}-${Math.random().toString(36).slice(2, 8)}` };
  if (view.replyTo) data.reply_to = view.replyTo.id;
  input.value = "";
  view.replyTo = null;
  $("#replying").hidden = true;
  say(status, "");
  // A chat with a nonce is safe to send again after a reconnect: the server answers the first.
  await op("chat.send", data, { retry: true }).catch(() => {
    if (!input.value) input.value = text;
  });
});

// ---------- pins ----------

function renderPins() {
  const pins = view.pinned.map((id) => view.byId.get(id)).filter(Boolean);
  $("#pins").hidden = view.pinned.length === 0;
  fill(
    $("#pin-list"),
    view.pinned.map((id) => {
      const m = view.byId.get(id);
      return el("li", {}, m ? [el("strong", {}, `@${m.username}: `), m.text] : "a pinned message");
    }),
  );
  return pins;
}

// ---------- who is here ----------

function renderPeople() {
  const mod = isMod();
  const me = view.me && view.me.user_id;
  $("#people-count").textContent = `(${view.presence.size}${view.guests ? ` + ${view.guests} guests` : ""})`;
  fill(
    $("#people"),
    [...view.presence].map(([id, name]) =>
      el(
        "li",
        { dataset: { user: id } },
        el("span", {}, `@${name}`),
        mod && id !== me && el(
          "span",
          { class: "mod-actions" },
          el("button", { type: "button", class: "link", dataset: { mod: "mute" }, "aria-label": `Mute @${name} for 10 minutes` }, "mute"),
          el("button", { type: "button", class: "link", dataset: { mod: "kick" }, "aria-label": `Kick @${name}` }, "kick"),
          el("button", { type: "button", class: "link", dataset: { mod: "ban" }, "aria-label": `Ban @${name}` }, "ban"),
          view.session && view.session.rotation.djs.includes(id) &&
            el("button", { type: "button", class: "link", dataset: { mod: "remove_dj" }, "aria-label": `Remove @${name} from the rotation` }, "remove DJ"),
        ),
      ),
    ),
  );
}

$("#people").addEventListener("click", async (e) => {
  const button = e.target.closest("[data-mod]");
  if (!button) return;
  const user_id = button.closest("li").dataset.user;
  const action = button.dataset.mod;
  const data = { user_id };
  if (action === "mute") data.seconds = 600;
  await op(`mod.${action}`, data).catch(() => {});
});

// ---------- the DJ booth ----------

const name = (id) => (id === (view.me && view.me.user_id) ? "you" : `@${view.names.get(id) || view.presence.get(id) || id.slice(0, 8)}`);

function renderBooth() {
  const s = view.session;
  const me = view.me && view.me.user_id;
  const controls = $("#session-controls");
  fill(controls);
  if (!s) {
    fill($("#now-playing"), el("p", { class: "meta" }, "No DJ session right now."));
    fill($("#votes"));
    fill($("#rotation"));
    fill($("#my-queue"));
    fill($("#up-next"));
    $("#queue-add").hidden = true;
    if (isMod()) {
      const mode = el("select", { "aria-label": "Session mode" }, ["fan", "public", "artist"].map((m) => el("option", { value: m }, m)));
      controls.append(
        mode,
        el("button", { type: "button", onclick: () => op("session.start", { mode: mode.value }).catch(() => {}) }, "Start a DJ session"),
      );
    }
    return;
  }
  renderNowPlaying();
  const inRotation = s.rotation.djs.includes(me);
  if (me && s.mode === "fan") {
    controls.append(
      el("button", { type: "button", onclick: () => op(inRotation ? "dj.leave" : "dj.join").catch(() => {}) },
        inRotation ? "Leave the rotation" : "Join the rotation"),
    );
  }
  const playing = s.now_playing;
  if (playing && (isMod() || playing.dj_id === me)) {
    controls.append(el("button", { type: "button", onclick: () => op("mod.skip").catch(() => {}) }, "Skip track"));
  }
  if (isMod()) {
    controls.append(
      el("button", { type: "button", onclick: () => op("mod.clear_queue").catch(() => {}) }, "Clear queue"),
      el("button", { type: "button", onclick: () => op("session.stop").catch(() => {}) }, "End session"),
    );
  }
  fill(
    $("#rotation"),
    s.rotation.djs.map((id) => el("li", { class: id === s.rotation.active ? "active" : "" }, name(id), id === s.rotation.active ? " ▶" : "")),
  );
  const canAdd = me && (s.mode === "public" || (s.mode === "fan" && inRotation) || (s.mode === "artist" && (s.host_id === me || isMod())));
  $("#queue-add").hidden = !canAdd;
  const mine = s.queue.filter((item) => item.added_by === me);
  fill(
    $("#my-queue"),
    mine.length
      ? mine.map((item, i) =>
          el(
            "li",
            { dataset: { item: item.item_id } },
            el("span", { class: "grow" }, `${item.track.title} — ${item.track.artist}`),
            s.mode !== "public" && el("button", { type: "button", class: "link", dataset: { move: i }, disabled: i === 0, "aria-label": `Move ${item.track.title} up` }, "▲"),
            s.mode !== "public" && el("button", { type: "button", class: "link", dataset: { move: i + 2 }, disabled: i === mine.length - 1, "aria-label": `Move ${item.track.title} down` }, "▼"),
            el("button", { type: "button", class: "link", dataset: { remove: "1" }, "aria-label": `Remove ${item.track.title}` }, "remove"),
          ),
        )
      : el("li", { class: "meta" }, "Nothing queued."),
  );
  fill(
    $("#up-next"),
    s.queue.slice(0, 10).map((item) =>
      el(
        "li",
        { dataset: { item: item.item_id } },
        el("span", { class: "grow" }, `${item.track.title} — ${item.track.artist} `, el("span", { class: "meta" }, `by ${name(item.added_by)}`)),
        s.mode === "public" && item.added_by !== me && [
          el("button", { type: "button", class: "link", dataset: { qvote: "up" }, "aria-label": `Vote up ${item.track.title}` }, `▲ ${item.votes.up}`),
          el("button", { type: "button", class: "link", dataset: { qvote: "down" }, "aria-label": `Vote down ${item.track.title}` }, `▼ ${item.votes.down}`),
        ],
        isMod() && item.added_by !== me && el("button", { type: "button", class: "link", dataset: { remove: "1" }, "aria-label": `Remove ${item.track.title}` }, "remove"),
      ),
    ),
  );
  renderPeople();
}

function renderNowPlaying() {
  const s = view.session;
  const box = $("#now-playing");
  const playing = s && s.now_playing;
  if (!playing) {
    fill(box, el("p", { class: "meta" }, `${s.mode} session · nothing playing`));
    fill($("#votes"));
    return;
  }
  const t = playing.item.track;
  const bar = el("progress", { id: "progress", max: String(playing.ends_at - playing.started_at), value: "0", "aria-label": "Track progress" });
  fill(
    box,
    el("p", { class: "np-title" }, el("strong", { id: "np-title" }, t.title), " — ", t.artist),
    el("p", { class: "meta" }, `played by ${name(playing.dj_id)}`),
    bar,
    el("span", { id: "np-time", class: "meta" }),
  );
  tick();
  renderVotes();
}

function renderVotes() {
  const playing = view.session && view.session.now_playing;
  if (!playing) return fill($("#votes"));
  const me = view.me && view.me.user_id;
  const tally = view.tally && view.tally.item_id === playing.item.item_id ? view.tally : { ...playing.votes };
  const own = playing.item.added_by === me || playing.dj_id === me;
  const button = (value, label, count) =>
    el(
      "button",
      {
        type: "button",
        class: "vote",
        dataset: { vote: value },
        "aria-pressed": String(view.myVote === value),
        disabled: !me || (own && value !== "skip"),
        "aria-label": `${label} (${count})`,
      },
      `${label} `,
      el("span", { class: "count", dataset: { count: value } }, String(count ?? 0)),
    );
  fill($("#votes"), button("up", "👍 Up", tally.up), button("down", "👎 Down", tally.down), button("skip", "⏭ Skip", tally.skip));
}

function tick() {
  const playing = view.session && view.session.now_playing;
  const bar = $("#progress");
  if (!playing || !bar) return;
  const now = Date.now() + view.clockSkew;
  const done = Math.min(playing.ends_at - playing.started_at, Math.max(0, now - playing.started_at));
  bar.value = done;
  $("#np-time").textContent = ` ${clock(done)} / ${clock(playing.ends_at - playing.started_at)}`;
}
setInterval(tick, 250);

$("#votes").addEventListener("click", async (e) => {
  const button = e.target.closest("[data-vote]");
  const playing = view.session && view.session.now_playing;
  if (!button || !playing) return;
  const value = button.dataset.vote;
  const item_id = playing.item.item_id;
  if (value === "skip") await op("vote.skip", { item_id }).catch(() => {});
  else {
    const next = view.myVote === value ? "none" : value;
    await op("vote", { item_id, value: next }).then(() => { view.myVote = next === "none" ? null : next; renderVotes(); }).catch(() => {});
  }
});

$("#my-queue").addEventListener("click", (e) => queueAction(e));
$("#up-next").addEventListener("click", (e) => queueAction(e));

async function queueAction(e) {
  const button = e.target.closest("button");
  const li = e.target.closest("li[data-item]");
  if (!button || !li) return;
  const item_id = li.dataset.item;
  if (button.dataset.remove) await op("queue.remove", { item_id }).catch(() => {});
  else if (button.dataset.qvote) await op("vote", { item_id, value: button.dataset.qvote }).catch(() => {});
  else if (button.dataset.move) {
    try {
      await api("PATCH", `/api/v1/dj/queue/${item_id}`, { position: Number(button.dataset.move) });
    } catch (err) {
      say(status, err.message);
    }
  }
}

$("#queue-add").addEventListener("submit", async (e) => {
  e.preventDefault();
  const v = Object.fromEntries(new FormData(e.target).entries());
  const track = { url: v.url.trim(), title: v.title.trim(), artist: v.artist.trim(), duration_ms: Math.round(Number(v.seconds) * 1000) };
  try {
    await op("queue.add", { track });
    e.target.reset();
  } catch {}
});

// ---------- the live protocol ----------

function onWelcome(data, { resumed }) {
  view.me = data.you;
  view.room = data.room;
  view.pinned = data.room.pinned_message_ids || [];
  view.presence = new Map(data.presence.map((p) => [p.user_id, p.username]));
  for (const [id, username] of view.presence) view.names.set(id, username);
  view.guests = data.guests;
  view.session = data.session;
  view.tally = null;
  document.title = `${data.room.name} · seda.fm`;
  $("#room-name").textContent = data.room.name;
  if (!resumed) {
    // The welcome's state stands: what we held may have a gap before it.
    view.msgs = [];
    view.byId = new Map();
    view.historyCursor = undefined;
    for (const m of data.recent_messages) {
      remember(m);
      view.msgs.push(m);
    }
    jumpToLatest();
  }
  renderPins();
  renderPeople();
  renderBooth();
}

const EVENTS = {
  "chat.message": (d, msg) => addLive({ ...d, seq: msg.seq }),
  "chat.deleted": (d) => {
    const m = view.byId.get(d.id);
    if (m) {
      m.deleted = true;
      document.getElementById(`m-${d.id}`)?.classList.add("deleted");
      const node = document.querySelector(`#m-${CSS.escape(d.id)} .text`);
      if (node) node.textContent = "(deleted)";
    }
  },
  "chat.reaction": (d) => {
    const m = view.byId.get(d.message_id);
    if (d.user_id === (view.me && view.me.user_id)) {
      if (d.added) view.mine.add(`${d.message_id}:${d.emoji}`);
      else view.mine.delete(`${d.message_id}:${d.emoji}`);
    }
    if (!m) return;
    m.reactions = { ...(m.reactions || {}), [d.emoji]: d.count };
    rerender(m.id);
  },
  "chat.reactions_cleared": (d) => {
    const m = view.byId.get(d.message_id);
    if (m) {
      m.reactions = {};
      rerender(m.id);
    }
  },
  "chat.pinned": (d) => {
    if (!view.pinned.includes(d.message_id)) view.pinned.push(d.message_id);
    renderPins();
    rerender(d.message_id);
  },
  "chat.unpinned": (d) => {
    view.pinned = view.pinned.filter((id) => id !== d.message_id);
    renderPins();
    rerender(d.message_id);
  },
  "presence.join": (d) => {
    view.presence.set(d.user_id, d.username);
    view.names.set(d.user_id, d.username);
    renderPeople();
  },
  "presence.leave": (d) => {
    view.presence.delete(d.user_id);
    renderPeople();
  },
  "room.updated": (d) => {
    view.room = d.room;
    view.pinned = d.room.pinned_message_ids || view.pinned;
    $("#room-name").textContent = d.room.name;
    renderPins();
  },
  "room.deleted": () => say(status, "This room was deleted."),
  "session.started": (d) => {
    view.session = d;
    renderBooth();
  },
  "session.updated": (d) => {
    if (view.session) view.session.settings = d.settings;
  },
  "session.ended": () => {
    view.session = null;
    renderBooth();
  },
  "dj.rotation": (d) => {
    if (!view.session) return;
    view.session.rotation = { djs: d.djs, active: d.active };
    renderBooth();
  },
  "queue.updated": (d) => {
    if (!view.session) return;
    view.session.queue = d.queue;
    renderBooth();
  },
  "track.started": (d, msg) => {
    if (!view.session) return;
    view.clockSkew = msg.at - Date.now();
    view.session.now_playing = { item: d.item, dj_id: d.dj_id, started_at: d.started_at, ends_at: d.ends_at, votes: { up: 0, down: 0, skip: 0 } };
    view.session.queue = view.session.queue.filter((i) => i.item_id !== d.item.item_id);
    view.tally = null;
    view.myVote = null;
    renderBooth();
  },
  "track.ended": (d) => {
    if (!view.session) return;
    const playing = view.session.now_playing;
    if (playing && playing.item.item_id === d.item_id) {
      const t = playing.item.track;
      say(status, `“${t.title}” ${d.reason === "completed" ? "finished" : "was skipped"} (👍 ${d.votes.up} 👎 ${d.votes.down})`, "ok");
      view.session.now_playing = null;
    }
    renderBooth();
  },
  "vote.tally": (d) => {
    const playing = view.session && view.session.now_playing;
    if (playing && playing.item.item_id === d.item_id) {
      view.tally = d;
      renderVotes();
    } else if (view.session) {
      const item = view.session.queue.find((i) => i.item_id === d.item_id);
      if (item) {
        item.votes = { up: d.up, down: d.down };
        renderBooth();
      }
    }
  },
  "user.muted": (d) => d.user_id === view.me?.user_id && say(status, `You are muted until ${new Date(d.until).toLocaleTimeString()}.`),
  "user.unmuted": (d) => d.user_id === view.me?.user_id && say(status, "You can chat again.", "ok"),
  "user.kicked": (d) => d.user_id === view.me?.user_id && say(status, "You were removed from this room."),
  "user.banned": (d) => d.user_id === view.me?.user_id && say(status, "You are banned from this room."),
  notification: (d) => bell.push(d),
  "points.awarded": (d) => say(status, `+${d.points} points (${d.reason})`, "ok"),
  "level.up": (d) => say(status, `Level up! You are now level ${d.level}.`, "ok"),
};

function onEvent(msg) {
  EVENTS[msg.name]?.(msg.data, msg);
}

function onStatus(state, detail) {
  const badge = $("#conn");
  badge.dataset.state = state;
  if (state === "live") {
    badge.textContent = detail.resumed ? `live — caught up (${detail.replayed} missed event${detail.replayed === 1 ? "" : "s"})` : "live";
  } else if (state === "reconnecting") {
    badge.textContent = "reconnecting…";
  } else if (state === "closed") {
    badge.textContent = detail.code === 4010 ? "removed from the room" : detail.code === 4004 ? "room deleted" : "disconnected";
  } else {
    badge.textContent = "connecting…";
  }
}

// ---------- start ----------

const bell = new Bell($("#bell"), $("#notifications"), $("#notification-list"), $("#unread"), $("#read-all"));

async function start() {
  const user = currentUser();
  fill($("#account"), user ? el("span", {}, `@${user.username}`) : el("a", { href: "/" }, "Sign in"));
  $("#composer-text").disabled = !user;
  const slug = decodeURIComponent(location.pathname.split("/")[2] || "");
  let room;
  try {
    room = await get(`/api/v1/rooms/${encodeURIComponent(slug)}`);
  } catch (e) {
    say(status, e instanceof ApiError && e.status === 404 ? "No such room." : e.message);
    onStatus("closed", {});
    return;
  }
  view.room = room;
  $("#room-name").textContent = room.name;
  if (user) bell.load();
  live = new LiveRoom(room.id, { welcome: onWelcome, event: onEvent, status: onStatus });
  live.connect();
}

start();
