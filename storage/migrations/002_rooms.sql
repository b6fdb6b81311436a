-- Rooms, memberships, tracks, chat, and the room journal (events + snapshots).
CREATE TABLE rooms (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug text NOT NULL CHECK (slug ~ '^[a-z0-9][a-z0-9-]{1,62}$'),
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    description text,
    type text NOT NULL DEFAULT 'public' CHECK (type IN ('public', 'genre', 'artist', 'private')),
    visibility text NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'unlisted', 'private')),
    owner_id uuid NOT NULL REFERENCES users (id),
    genres text[] NOT NULL DEFAULT '{}',
    tags text[] NOT NULL DEFAULT '{}',
    pinned_track jsonb,
    pinned_message_ids uuid[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz
);
CREATE UNIQUE INDEX rooms_slug_key ON rooms (slug);
CREATE INDEX rooms_owner_idx ON rooms (owner_id);
CREATE INDEX rooms_listed_idx ON rooms (created_at DESC) WHERE deleted_at IS NULL AND visibility = 'public';

CREATE TABLE room_memberships (
    room_id uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role text NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'moderator', 'member')),
    joined_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX room_memberships_user_idx ON room_memberships (user_id, joined_at DESC);

CREATE TABLE room_bans (
    room_id uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    until timestamptz,  -- NULL: permanent
    reason text,
    banned_by uuid REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room_id, user_id)
);

CREATE TABLE track_refs (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    provider text NOT NULL CHECK (provider IN ('spotify', 'apple_music', 'youtube', 'soundcloud', 'bandcamp', 'deezer', 'upload')),
    provider_id text NOT NULL,
    title text NOT NULL,
    artist text NOT NULL,
    duration_ms integer NOT NULL CHECK (duration_ms BETWEEN 1000 AND 7200000),
    artwork_url text,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, provider_id)
);

CREATE TABLE messages (
    id uuid PRIMARY KEY,
    room_id uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id),
    text text NOT NULL,
    parent_id uuid,
    track_ref_id uuid REFERENCES track_refs (id),
    mentions uuid[] NOT NULL DEFAULT '{}',
    nonce text,
    seq bigint NOT NULL,
    created_at timestamptz NOT NULL,
    deleted_at timestamptz,
    deleted_by uuid
);
CREATE INDEX messages_room_page_idx ON messages (room_id, created_at DESC, id DESC);
CREATE INDEX messages_parent_idx ON messages (parent_id) WHERE parent_id IS NOT NULL;

CREATE TABLE message_reactions (
    message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    emoji text NOT NULL CHECK (emoji IN ('clap', 'fire', 'heart', 'star', 'wave')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, user_id, emoji)
);

-- Who was mentioned where: the notification center reads this.
CREATE TABLE message_mentions (
    message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room_id uuid NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (message_id, user_id)
);
CREATE INDEX message_mentions_user_idx ON message_mentions (user_id, created_at DESC);

-- The journal: every durable room event, by (room, seq). seq never repeats or skips.
CREATE TABLE room_events (
    room_id uuid NOT NULL,
    seq bigint NOT NULL,
    name text NOT NULL,
    payload jsonb NOT NULL,
    at timestamptz NOT NULL,
    PRIMARY KEY (room_id, seq)
);

CREATE TABLE room_snapshots (
    room_id uuid PRIMARY KEY,
    seq bigint NOT NULL,
    state jsonb NOT NULL,
    taken_at timestamptz NOT NULL DEFAULT now()
);
