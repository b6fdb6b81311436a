-- Recommendations (REST.md "Recommendations and linked accounts"): who was present in which live
-- room and when (the journal writes it from the rooms' presence), what users dismissed, and the
-- indexes the recommendation queries read by.

-- One row per stay: a user's first socket in a room opens it, their last one closing ends it.
-- left_at NULL: still there. A room's actor stopping (idle, shutdown, crash) ends its open stays;
-- a server that died without that gets them ended at its next start (storage/journal.py).
CREATE TABLE room_presence (
    room_id uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    joined_at timestamptz NOT NULL,
    left_at timestamptz,
    CHECK (left_at IS NULL OR left_at >= joined_at)
);
-- At most one open stay per user and room; the leave that ends it finds it here.
CREATE UNIQUE INDEX room_presence_open_key ON room_presence (room_id, user_id) WHERE left_at IS NULL;
-- A stay counts as "since T" when it ended at or after T (or has not ended): the rooms a user
-- was in since T, the users in a room since T, and every room's listeners since T (trending).
CREATE INDEX room_presence_user_idx ON room_presence (user_id, (coalesce(left_at, 'infinity')), room_id);
CREATE INDEX room_presence_room_idx ON room_presence (room_id, (coalesce(left_at, 'infinity')), user_id);
CREATE INDEX room_presence_recent_idx ON room_presence ((coalesce(left_at, 'infinity')), room_id, user_id);

-- A dismissed entity is never recommended to that user again.
CREATE TABLE recommendation_dismissals (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    entity_type text NOT NULL CHECK (entity_type IN ('room', 'playlist', 'artist')),
    entity_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, entity_type, entity_id)
);

-- Rooms anyone may be recommended, by genre.
CREATE INDEX rooms_genres_idx ON rooms USING gin (genres)
    WHERE deleted_at IS NULL AND visibility = 'public' AND type <> 'private';
-- Playlists holding a track, rooms' recent plays, and artists by the name tracks carry.
CREATE INDEX playlist_items_track_idx ON playlist_items (track_ref_id, playlist_id);
CREATE INDEX track_plays_room_idx ON track_plays (room_id, started_at DESC);
CREATE INDEX artist_profiles_name_idx ON artist_profiles (lower(artist_name));
