// One room's live socket (PROTOCOL.md): welcome, events in seq order, replies by ref, and
// reconnection with `since` so that nothing is missed and nothing is seen twice.

import { get, token } from "./api.js";

const TOKEN_PREFIX = "seda.token.";
const NO_RETRY = new Set([4004, 4010]); // room deleted, kicked or banned

export class LiveRoom {
  /**
   * handlers: welcome(data, {resumed}), event(msg), status(state, detail), closed(code, reason)
   * state is one of "connecting", "live", "reconnecting", "closed".
   */
  constructor(roomId, handlers) {
    this.roomId = roomId;
    this.handlers = handlers;
    this.seq = null; // the last durable seq applied
    this.ws = null;
    this.ref = 0;
    this.pending = new Map(); // ref -> {resolve, reject, op, data}
    this.retryMs = 250;
    this.stopped = false;
    this.attempt = 0;
    this.liveUrl = null;
  }

  async connect() {
    this.handlers.status?.(this.attempt === 0 ? "connecting" : "reconnecting", { attempt: this.attempt });
    try {
      // Asked each time: after a restart the gateway may be elsewhere.
      this.liveUrl = (await get("/api/v1/live")).url;
    } catch (e) {
      if (!this.liveUrl) return this.retry();
    }
    const since = this.seq !== null ? `?since=${this.seq}` : "";
    const protocols = ["seda.v1.json"];
    const t = token();
    if (t) protocols.push(TOKEN_PREFIX + t);
    let ws;
    try {
      ws = new WebSocket(`${this.liveUrl}/ws/rooms/${encodeURIComponent(this.roomId)}${since}`, protocols);
    } catch (e) {
      return this.retry();
    }
    this.ws = ws;
    this.welcomed = false;
    ws.onmessage = (m) => this.receive(JSON.parse(m.data));
    ws.onclose = (e) => this.onClose(ws, e);
  }

  receive(msg) {
    if (msg.type === "welcome") {
      const data = msg.data;
      const resumed = data.resumed && this.seq !== null;
      // Resumed: exactly the missed events follow; otherwise the welcome's state stands.
      if (!resumed) this.seq = data.seq;
      this.welcomed = true;
      this.retryMs = 250;
      this.attempt = 0;
      this.handlers.welcome?.(data, { resumed, replayed: data.replayed });
      this.handlers.status?.("live", { resumed, replayed: data.replayed });
      this.resend();
      return;
    }
    if (msg.type === "reply") {
      const waiting = this.pending.get(msg.ref);
      if (!waiting) return;
      this.pending.delete(msg.ref);
      if (msg.ok) waiting.resolve(msg.data || {});
      else waiting.reject(Object.assign(new Error(msg.error.message), msg.error));
      return;
    }
    if (msg.type !== "event") return;
    if (msg.seq !== undefined && msg.seq !== null) {
      if (this.seq !== null && msg.seq <= this.seq) return; // seen already
      if (this.seq !== null && msg.seq > this.seq + 1) {
        // A gap can only mean a lost frame: start over from what we have.
        this.ws.close(4000, "gap");
        return;
      }
      this.seq = msg.seq;
    }
    this.handlers.event?.(msg);
  }

  /** Send an op; resolves with the reply's data, rejects with its error ({code, message}). */
  request(op, data, { retry = false } = {}) {
    const ref = ++this.ref;
    return new Promise((resolve, reject) => {
      const p = { resolve, reject, op, data, retry, sent: false };
      this.pending.set(ref, p);
      this.write(ref, p);
    });
  }

  write(ref, p) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN && this.welcomed) {
      this.ws.send(JSON.stringify({ op: p.op, ref, data: p.data }));
      p.sent = true;
      p.sentOn = this.ws;
    }
  }

  /** After a (re)connect: ops not sent yet go now; ops sent on a lost socket go again only if
   * they are safe to repeat (chat.send with a nonce), else they fail and the user may retry. */
  resend() {
    for (const [ref, p] of this.pending) {
      if (p.sentOn === this.ws) continue;
      if (!p.sent || p.retry) this.write(ref, p);
      else {
        this.pending.delete(ref);
        p.reject(Object.assign(new Error("the connection was lost; try again"), { code: "internal" }));
      }
    }
  }

  onClose(ws, event) {
    if (ws !== this.ws) return;
    this.ws = null;
    if (this.stopped) return;
    if (NO_RETRY.has(event.code)) {
      this.stopped = true;
      this.handlers.status?.("closed", { code: event.code, reason: event.reason });
      this.handlers.closed?.(event.code, event.reason);
      return;
    }
    if (event.code === 1008 && /since/.test(event.reason || "")) this.seq = null; // start afresh
    this.retry(event.code);
  }

  retry(code) {
    this.attempt += 1;
    this.handlers.status?.("reconnecting", { attempt: this.attempt, code });
    const wait = Math.min(this.retryMs, 5000) * (0.75 + Math.random() / 2);
    this.retryMs = Math.min(this.retryMs * 2, 5000);
    setTimeout(() => this.stopped || this.connect(), wait);
  }

  close() {
    this.stopped = true;
    this.ws?.close(1000, "bye");
  }
}
