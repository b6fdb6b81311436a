-- Many processes and machines (ARCHITECTURE.md): who is alive, and who owns which live room.
CREATE TABLE nodes (
    node_id      uuid PRIMARY KEY,
    host         text NOT NULL,
    pid          integer NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    sockets      integer NOT NULL DEFAULT 0,
    stopped_at   timestamptz
);

-- One row per room that has ever been live; the epoch only grows (a release expires the row).
-- The owner's renewal also writes what it sees of the room, for GET /admin/rooms/live.
CREATE TABLE room_leases (
    room_id    uuid PRIMARY KEY REFERENCES rooms(id) ON DELETE CASCADE,
    node_id    uuid NOT NULL,
    epoch      bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    seq        bigint NOT NULL DEFAULT 0,
    sockets    integer NOT NULL DEFAULT 0,
    listeners  integer NOT NULL DEFAULT 0,
    session    jsonb
);
CREATE INDEX room_leases_node ON room_leases (node_id);
