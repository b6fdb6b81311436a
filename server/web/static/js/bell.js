// The notification bell: the unread count and list over REST, new ones as the private live event
// `notification`.

import { get, post, query } from "./api.js";
import { el, fill, timeAgo } from "./dom.js";

function describe(n) {
  const who = n.actor ? `@${n.actor.username}` : "Someone";
  const d = n.data || {};
  switch (n.type) {
    case "mention": return `${who} mentioned you`;
    case "reply": return `${who} replied to you`;
    case "follow": return `${who} followed you`;
    case "level_up": return `You reached level ${d.level}`;
    case "badge": return `You earned the badge ${d.badge_code}`;
    case "join_request": return `${who} asked to join a room`;
    case "join_request_decision": return d.approved ? "Your join request was approved" : "Your join request was declined";
    case "report_resolved": return `Your report was ${d.status}`;
    case "dj_live": return `${who} is DJing now`;
    default: return n.type;
  }
}

export class Bell {
  constructor(button, panel, list, badge, readAll) {
    this.button = button;
    this.panel = panel;
    this.list = list;
    this.badge = badge;
    this.items = [];
    this.unread = 0;
    button.addEventListener("click", () => this.toggle());
    panel.addEventListener("keydown", (e) => e.key === "Escape" && this.toggle(false));
    readAll.addEventListener("click", async () => {
      await post("/api/v1/notifications/read-all", {}).catch(() => {});
      for (const n of this.items) n.read_at = n.read_at || new Date().toISOString();
      this.setUnread(0);
      this.render();
    });
  }

  async load() {
    try {
      const [count, page] = await Promise.all([
        get("/api/v1/notifications/unread-count"),
        get("/api/v1/notifications" + query({ limit: 20 })),
      ]);
      const seen = new Set(this.items.map((n) => n.id));
      this.items = [...this.items, ...page.items.filter((n) => !seen.has(n.id))];
      this.setUnread(count.count);
      this.render();
    } catch {
      // signed out or offline: the bell stays as it is
    }
  }

  push(n) {
    if (this.items.some((m) => m.id === n.id)) return;
    this.items.unshift(n);
    this.items.length = Math.min(this.items.length, 50);
    if (!n.read_at) this.setUnread(this.unread + 1);
    this.render();
  }

  setUnread(count) {
    this.unread = count;
    this.badge.textContent = String(count);
    this.badge.dataset.count = String(count);
    this.button.setAttribute("aria-label", `Notifications, ${count} unread`);
  }

  render() {
    fill(
      this.list,
      this.items.length
        ? this.items.map((n) =>
            el("li", { class: n.read_at ? "read" : "unread" }, describe(n), " ", el("span", { class: "meta" }, timeAgo(Date.parse(n.created_at)))),
          )
        : el("li", { class: "meta" }, "Nothing yet."),
    );
  }

  toggle(open = this.panel.hidden) {
    this.panel.hidden = !open;
    this.button.setAttribute("aria-expanded", String(open));
    if (open) this.panel.querySelector("button")?.focus();
  }
}
