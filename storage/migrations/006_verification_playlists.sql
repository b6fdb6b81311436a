-- Artist verification requests, playlists, and who played which track (for PLAYLIST_ADD points).
CREATE TABLE verification_requests (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    artist_name text NOT NULL,
    links text[] NOT NULL,
    message text,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied')),
    reason text,
    reviewed_by uuid REFERENCES users (id) ON DELETE SET NULL,
    reviewed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- One pending request per user: a second one is refused by this index, race or not.
CREATE UNIQUE INDEX verification_requests_one_pending ON verification_requests (user_id) WHERE status = 'pending';
CREATE INDEX verification_requests_queue_idx ON verification_requests (status, created_at, id);
CREATE INDEX verification_requests_user_idx ON verification_requests (user_id, created_at DESC, id DESC);

CREATE TABLE playlists (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name text NOT NULL,
    description text,
    is_public boolean NOT NULL DEFAULT true,
    items_count integer NOT NULL DEFAULT 0 CHECK (items_count >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX playlists_owner_idx ON playlists (owner_id, created_at DESC, id DESC);

CREATE TABLE playlist_collaborators (
    playlist_id uuid NOT NULL REFERENCES playlists (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added_by uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (playlist_id, user_id)
);
CREATE INDEX playlist_collaborators_user_idx ON playlist_collaborators (user_id);

-- rank orders the items (sparse, so appends and deletes never move other items and
-- pages keyed on (rank, id) stay stable); the position clients see is the index in that order.
CREATE TABLE playlist_items (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    playlist_id uuid NOT NULL REFERENCES playlists (id) ON DELETE CASCADE,
    track_ref_id uuid NOT NULL REFERENCES track_refs (id),
    added_by uuid REFERENCES users (id) ON DELETE SET NULL,
    rank bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX playlist_items_order_idx ON playlist_items (playlist_id, rank, id);

-- Every track that started playing in a room, and whose turn it was.
CREATE TABLE track_plays (
    item_id text PRIMARY KEY,
    room_id uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    dj_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    track_ref_id uuid NOT NULL REFERENCES track_refs (id),
    started_at timestamptz NOT NULL
);
CREATE INDEX track_plays_track_idx ON track_plays (track_ref_id, dj_id);

INSERT INTO track_plays (item_id, room_id, dj_id, track_ref_id, started_at)
SELECT p.item_id, p.room_id, u.id, t.id, p.at
FROM (SELECT payload -> 'data' -> 'item' ->> 'item_id' AS item_id, room_id, at,
             (payload -> 'data' ->> 'dj_id')::uuid AS dj_id,
             (payload -> 'data' -> 'item' -> 'track' ->> 'id')::uuid AS track_id
      FROM room_events WHERE name = 'track.started') p
JOIN users u ON u.id = p.dj_id
JOIN track_refs t ON t.id = p.track_id
ON CONFLICT DO NOTHING;
