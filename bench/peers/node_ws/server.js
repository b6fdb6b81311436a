'use strict';
// Fan-out reference for `python -m bench fanout-peer`: a Node `ws` broadcast server that speaks
// just enough of PROTOCOL.md for the bench's listeners and senders, in the same JSON shapes as
// seda serve (compact, same key order), so the same clients run unchanged against both.
//
//   GET /ws/rooms/<id>[?since=N]  -> {"type":"welcome","data":{...}} (guests and tokens alike;
//                                    a token is not checked)
//   {"op":"chat.send","ref":R,"data":{"text":...}}
//                                 -> {"type":"event","name":"chat.message","seq":S,...} to every
//                                    socket in the room, framed once, then the reply
//                                    {"type":"reply","ref":R,"ok":true,"data":{"message_id","seq"}}
//   {"op":"ping","ref":R}         -> {"type":"reply","ref":R,"ok":true,"data":{"ts":ms}}
//   anything else                 -> {"type":"reply","ref":R,"ok":false,"error":{"code":"bad_request",...}}
//
// No durability, no membership, no rate limits: the fan-out path only.
//
//   node server.js [--port P] [--host H] [--plain-send]
// --plain-send broadcasts with ws.send(buffer) per socket instead of one prebuilt frame.

const http = require('http');
const crypto = require('crypto');
const { WebSocketServer, WebSocket } = require('ws');
const { Sender } = require('ws');

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at >= 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

const port = Number(option('--port', '8766'));
const host = option('--host', '127.0.0.1');
const plainSend = process.argv.includes('--plain-send');
const ROOM_PATH = /^\/ws\/rooms\/([^/?]+)(?:\?(.*))?$/;
const GUEST_ID = '00000000-0000-0000-0000-000000000000';
const AUTHOR_ID = '00000000-0000-0000-0000-000000000001';

const rooms = new Map(); // id -> {id, seq, sockets: Set}

function room(id) {
  let found = rooms.get(id);
  if (found === undefined) {
    found = { id, seq: 0, sockets: new Set() };
    rooms.set(id, found);
  }
  return found;
}

function welcome(r, token) {
  return JSON.stringify({
    type: 'welcome',
    data: {
      room: {
        id: r.id, slug: r.id, name: r.id, type: 'public', visibility: 'public', owner_id: AUTHOR_ID,
        pinned_track: null, pinned_message_ids: [],
      },
      seq: r.seq,
      you: token
        ? { user_id: AUTHOR_ID, username: 'bench', role: 'member', muted_until: null }
        : { user_id: GUEST_ID, username: null, role: 'guest', muted_until: null },
      presence: [],
      guests: r.sockets.size,
      session: null,
      recent_messages: [],
      resumed: false,
      replayed: 0,
    },
  });
}

function reply(ws, ref, ok, body) {
  const message = ok
    ? { type: 'reply', ref: ref === undefined ? null : ref, ok: true, data: body }
    : { type: 'reply', ref: ref === undefined ? null : ref, ok: false, error: body };
  ws.send(JSON.stringify(message));
}

const FRAME_OPTIONS = { fin: true, rsv1: false, opcode: 1, mask: false, readOnly: true };

function broadcast(r, payload) {
  if (plainSend) {
    for (const ws of r.sockets) if (ws.readyState === WebSocket.OPEN) ws.send(payload);
    return;
  }
  // One frame (header + payload) for every socket: no per-socket framing.
  const frame = [Buffer.concat(Sender.frame(payload, FRAME_OPTIONS))];
  for (const ws of r.sockets) {
    if (ws.readyState === WebSocket.OPEN) ws._sender.sendFrame(frame);
  }
}

function chatSend(ws, r, op) {
  const text = op.data && typeof op.data.text === 'string' ? op.data.text.trim() : '';
  if (text.length < 1 || text.length > 2000) {
    reply(ws, op.ref, false, { code: 'bad_request', message: 'text must be 1-2000 characters' });
    return;
  }
  r.seq += 1;
  const at = Date.now();
  const id = crypto.randomUUID();
  const event = {
    type: 'event', name: 'chat.message', seq: r.seq, at,
    data: {
      id, user_id: ws.userId, username: ws.username, text, reply_to: null, track: null,
      mentions: [], at, reactions: {},
    },
  };
  broadcast(r, Buffer.from(JSON.stringify(event)));
  reply(ws, op.ref, true, { message_id: id, seq: r.seq }); // after the event, as PROTOCOL.md orders
}

const server = http.createServer((req, res) => {
  res.writeHead(404, { 'content-type': 'application/json' });
  res.end('{"error":{"code":"not_found","message":"only /ws/rooms/<id>"}}');
});
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });

server.on('upgrade', (req, socket, head) => {
  const match = ROOM_PATH.exec(req.url || '');
  if (!match) {
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\n');
    return;
  }
  const auth = req.headers.authorization || '';
  const token = auth.startsWith('Bearer ') ? auth.slice(7) : null;
  wss.handleUpgrade(req, socket, head, (ws) => {
    const r = room(decodeURIComponent(match[1]));
    ws.userId = token ? AUTHOR_ID : GUEST_ID;
    ws.username = token ? 'bench' : null;
    ws.send(welcome(r, token));
    r.sockets.add(ws);
    ws.on('message', (data, isBinary) => {
      let op;
      try {
        op = JSON.parse(isBinary ? data : data.toString());
      } catch (err) {
        reply(ws, undefined, false, { code: 'bad_request', message: 'not JSON' });
        return;
      }
      if (op === null || typeof op !== 'object') {
        reply(ws, undefined, false, { code: 'bad_request', message: 'not an object' });
      } else if (op.op === 'chat.send') {
        chatSend(ws, r, op);
      } else if (op.op === 'ping') {
        reply(ws, op.ref, true, { ts: Date.now() });
      } else {
        reply(ws, op.ref, false, { code: 'bad_request', message: `op not served by this peer: ${op.op}` });
      }
    });
    ws.on('close', () => r.sockets.delete(ws));
    ws.on('error', () => r.sockets.delete(ws));
  });
});

server.listen(port, host, () => {
  const address = server.address();
  console.log(`node ws peer listening on ws://${address.address}:${address.port} (pid ${process.pid})`);
});

function stop() {
  for (const r of rooms.values()) for (const ws of r.sockets) ws.close(1001, 'going away');
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
