// The lobby: sign up / sign in, room lists (discover, trending, mine), search, create a room.

import { ApiError, currentUser, get, post, query, signIn, signOut, signUp, token } from "./api.js";
import { $, el, fill, say } from "./dom.js";

const status = $("#status");

function roomLink(room) {
  return el(
    "li",
    { class: "room" },
    el("a", { href: `/r/${encodeURIComponent(room.slug || room.id)}` }, room.name),
    el("span", { class: "meta" }, [room.type, ...(room.genres || [])].filter(Boolean).join(" · ")),
    el("span", { class: "listeners", title: "listening now" }, `${room.listeners ?? 0} listening`),
  );
}

async function showList(name) {
  for (const tab of document.querySelectorAll("[role=tab]")) {
    tab.setAttribute("aria-selected", String(tab.dataset.list === name));
  }
  const list = $("#rooms");
  if (name === "mine" && !token()) {
    fill(list, el("li", {}, "Sign in to see your rooms."));
    return;
  }
  const path = { discover: "/api/v1/rooms/discover", trending: "/api/v1/rooms/trending", mine: "/api/v1/rooms/me" }[name];
  try {
    const page = await get(path + query({ limit: 50 }));
    const items = page.items || [];
    fill(list, items.length ? items.map(roomLink) : el("li", {}, "No rooms here yet."));
  } catch (e) {
    fill(list, el("li", {}, `Could not load rooms: ${e.message}`));
  }
}

function showAccount() {
  const user = currentUser();
  const box = $("#account");
  $("#auth").hidden = !!user;
  $("#create").hidden = !user;
  if (!user) {
    fill(box);
    return;
  }
  fill(
    box,
    el("span", {}, `Signed in as @${user.username}`),
    el("button", { type: "button", class: "link", onclick: () => { signOut(); showAccount(); showList("discover"); } }, "Sign out"),
  );
}

function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}

$("#signin").addEventListener("submit", async (e) => {
  e.preventDefault();
  const v = formValues(e.target);
  try {
    await signIn(v.login.trim(), v.password);
    say(status, "Signed in.", "ok");
    showAccount();
  } catch (err) {
    say(status, err instanceof ApiError ? err.message : String(err));
  }
});

$("#signup").addEventListener("submit", async (e) => {
  e.preventDefault();
  const v = formValues(e.target);
  try {
    await signUp(v.email.trim(), v.username.trim().toLowerCase(), v.password);
    say(status, "Welcome! Your account is ready.", "ok");
    showAccount();
  } catch (err) {
    say(status, err.message);
  }
});

$("#create").addEventListener("submit", async (e) => {
  e.preventDefault();
  const v = formValues(e.target);
  const genres = (v.genres || "").split(",").map((g) => g.trim().toLowerCase()).filter(Boolean);
  try {
    const room = await post("/api/v1/rooms", {
      name: v.name.trim(),
      visibility: v.visibility,
      description: v.description || undefined,
      genres,
    });
    location.assign(`/r/${encodeURIComponent(room.slug || room.id)}`);
  } catch (err) {
    say(status, err.message);
  }
});

$("#search").addEventListener("submit", async (e) => {
  e.preventDefault();
  const q = formValues(e.target).q.trim();
  const out = $("#search-results");
  if (!q) return fill(out);
  try {
    const found = await get("/api/v1/search" + query({ q }));
    const groups = [];
    const names = { rooms: "Rooms", artists: "Artists", users: "People", playlists: "Playlists", tracks: "Tracks" };
    for (const [key, label] of Object.entries(names)) {
      const items = found[key] || [];
      if (!items.length) continue;
      groups.push(
        el("h3", {}, label),
        el(
          "ul",
          {},
          items.map((item) =>
            key === "rooms"
              ? roomLink(item)
              : el("li", {}, item.name || item.title || item.display_name || item.username || item.artist_name || item.id,
                  item.artist ? ` — ${item.artist}` : ""),
          ),
        ),
      );
    }
    fill(out, groups.length ? el("div", { class: "card" }, groups) : el("p", {}, `Nothing found for “${q}”.`));
  } catch (err) {
    fill(out, el("p", {}, err.message));
  }
});

for (const tab of document.querySelectorAll("[role=tab]")) {
  tab.addEventListener("click", () => showList(tab.dataset.list));
  tab.addEventListener("keydown", (e) => {
    const tabs = [...document.querySelectorAll("[role=tab]")];
    const i = tabs.indexOf(tab);
    const next = e.key === "ArrowRight" ? tabs[(i + 1) % tabs.length] : e.key === "ArrowLeft" ? tabs[(i + tabs.length - 1) % tabs.length] : null;
    if (next) { next.focus(); next.click(); }
  });
}

showAccount();
showList("discover");
