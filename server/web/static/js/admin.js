// The admin console: nodes, rooms live now, the journal, the report and verification queues,
// and a user's moderation status. Every call is an admin endpoint of the REST API; a 403 from
// the first one means this is not an admin, and the page says so.

import { ApiError, api, currentUser, get, post, query } from "./api.js";
import { $, el, fill, say, timeAgo } from "./dom.js";

const status = $("#status");
const REFRESH_MS = 2000;
let looked = null; // the user whose status is shown

const ago = (iso) => (iso ? timeAgo(Date.parse(iso)) : "—");
const short = (id) => (id || "").slice(0, 8);

function row(cells, attrs = {}) {
  return el("tr", attrs, cells.map((c) => el("td", {}, c)));
}

function none(text, columns) {
  return el("tr", {}, el("td", { colspan: columns, class: "meta" }, text));
}

function refuse(text) {
  $("#console").hidden = true;
  $("#refused").hidden = false;
  if (text) $("#refused-text").textContent = text;
}

async function loadNodes() {
  const nodes = await get("/api/v1/admin/nodes");
  fill(
    $("#nodes tbody"),
    nodes.items.map((n) => row([n.node_id, `${n.host} / ${n.pid}`, n.rooms_owned, n.sockets, ago(n.heartbeat_at)])),
  );
}

async function loadLiveRooms() {
  const page = await get("/api/v1/admin/rooms/live" + query({ limit: 50 }));
  fill(
    $("#live-rooms tbody"),
    page.items.length
      ? page.items.map((r) => {
          const s = r.session;
          const playing = s && s.now_playing ? ` · ${s.now_playing.item.track.title}` : "";
          return row([
            el("a", { href: `/r/${r.room_id}` }, r.name),
            r.listeners,
            r.sockets,
            r.seq,
            `${r.node_id} (${r.epoch})`,
            s ? `${s.mode}${playing}` : "—",
          ]);
        })
      : none("No room is live right now.", 6),
  );
}

async function loadJournal() {
  const j = await get("/api/v1/admin/journal");
  const stat = (label, value) => el("div", { class: "stat" }, el("strong", {}, value ?? "—"), label);
  const c = j.commit_ms || {};
  const b = j.batch_events || {};
  fill(
    $("#journal"),
    stat("batches committed", j.batches),
    stat("events committed", j.events),
    stat("commit p50 (ms)", c.p50),
    stat("commit p99 (ms)", c.p99),
    stat("commit max (ms)", c.max),
    stat("events per batch (mean)", b.mean),
    stat("events per batch (p99)", b.p99),
    stat("events per batch (max)", b.max),
    el("p", { class: "meta" }, `node ${j.node_id || "—"}, over its last ${j.recent_batches} batches`),
  );
}

async function loadReports() {
  const page = await get("/api/v1/admin/reports" + query({ status: "pending", limit: 50 }));
  const details = await Promise.all(page.items.map((r) => get(`/api/v1/admin/reports/${r.id}`).catch(() => r)));
  fill(
    $("#reports tbody"),
    details.length
      ? details.map((r) => {
          const target = r.target || {};
          const what = target.message ? `“${target.message.text}”` : target.user ? `@${target.user.username}` : target.room ? target.room.name : short(r.target_id);
          const action = el(
            "select",
            { "aria-label": "Action" },
            el("option", { value: "dismiss" }, "dismiss"),
            ["warn", "mute", "ban", "delete_message"].map((a) => el("option", { value: a }, a)),
          );
          const resolve = el("button", { type: "button" }, "Resolve");
          resolve.addEventListener("click", async () => {
            const body = action.value === "dismiss"
              ? { status: "dismissed" }
              : { status: "actioned", action: { type: action.value, reason: "from the admin console", ...(action.value === "mute" ? { seconds: 3600 } : {}) } };
            try {
              await post(`/api/v1/admin/reports/${r.id}/resolve`, body);
              say(status, "Report resolved.", "ok");
              await loadReports();
            } catch (e) {
              say(status, e.message);
            }
          });
          return row([ago(r.created_at), r.target_type, r.reason, [what, r.description ? el("div", { class: "meta" }, r.description) : null], el("span", { class: "row" }, action, resolve)]);
        })
      : none("The queue is empty.", 5),
  );
}

async function loadVerification() {
  const page = await get("/api/v1/admin/verification" + query({ status: "pending", limit: 50 }));
  fill(
    $("#verification tbody"),
    page.items.length
      ? page.items.map((v) => {
          const decide = async (verb) => {
            try {
              await post(`/api/v1/admin/verification/${v.id}/${verb}`, verb === "deny" ? { reason: "not verified" } : undefined);
              say(status, verb === "approve" ? "Approved." : "Denied.", "ok");
              await loadVerification();
            } catch (e) {
              say(status, e.message);
            }
          };
          return row([
            ago(v.created_at),
            `@${v.user.username}`,
            v.artist_name,
            el("ul", {}, v.links.map((l) => el("li", {}, l))),
            el("span", { class: "row" },
              el("button", { type: "button", onclick: () => decide("approve"), "aria-label": `Approve ${v.artist_name}` }, "Approve"),
              el("button", { type: "button", onclick: () => decide("deny"), "aria-label": `Deny ${v.artist_name}` }, "Deny")),
          ]);
        })
      : none("The queue is empty.", 5),
  );
}

async function showUser() {
  if (!looked) return;
  const m = await get(`/api/v1/admin/users/${looked.user_id}/moderation`);
  const until = (t) => (t ? new Date(t).toLocaleString() : "no");
  fill(
    $("#user-status"),
    el(
      "p",
      {},
      el("strong", {}, `@${looked.username}`),
      ` — banned: ${m.is_banned ? (m.banned_until ? `until ${until(m.banned_until)}` : "permanently") : "no"}`,
      ` · muted: ${m.muted_until ? `until ${until(m.muted_until)}` : "no"}`,
      ` · warnings: ${m.warn_count}`,
    ),
  );
  $("#sanction").hidden = false;
}

$("#lookup").addEventListener("submit", async (e) => {
  e.preventDefault();
  const username = new FormData(e.target).get("username").trim().toLowerCase();
  try {
    looked = await get(`/api/v1/profiles/${encodeURIComponent(username)}`);
    await showUser();
    say(status, "");
  } catch (err) {
    looked = null;
    $("#sanction").hidden = true;
    fill($("#user-status"), err instanceof ApiError && err.status === 404 ? `No user @${username}.` : err.message);
  }
});

$("#sanction").addEventListener("click", async (e) => {
  const button = e.target.closest("[data-act]");
  if (!button || !looked) return;
  const v = Object.fromEntries(new FormData($("#sanction")).entries());
  const act = button.dataset.act;
  const body = {};
  if (["warn", "mute", "ban"].includes(act)) body.reason = v.reason || "breaking the rules";
  if (act === "mute") body.seconds = Number(v.seconds) || 3600;
  if (act === "ban" && v.seconds) body.seconds = Number(v.seconds);
  try {
    await api("POST", `/api/v1/admin/users/${looked.user_id}/${act}`, body);
    say(status, `${act}: done.`, "ok");
    await showUser();
  } catch (err) {
    say(status, err.message);
  }
});

async function refresh() {
  await Promise.all([loadNodes(), loadLiveRooms(), loadJournal()]);
  $("#updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
}

async function start() {
  const user = currentUser();
  fill($("#account"), user ? el("span", {}, `@${user.username}`) : el("a", { href: "/" }, "Sign in"));
  try {
    await loadNodes();
  } catch (e) {
    if (e instanceof ApiError && (e.status === 403 || e.status === 401)) {
      refuse(e.status === 401 ? "Admins only: sign in with an admin account first." : "Admins only: your account is not an admin, so this console is closed to you.");
      return;
    }
    say(status, e.message);
  }
  $("#console").hidden = false;
  await Promise.all([refresh(), loadReports(), loadVerification()]).catch((e) => say(status, e.message));
  setInterval(() => refresh().catch((e) => say(status, e.message)), REFRESH_MS);
  setInterval(() => Promise.all([loadReports(), loadVerification()]).catch(() => {}), REFRESH_MS * 5);
}

start();
