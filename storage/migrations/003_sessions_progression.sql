-- DJ sessions (one live per room; the room actor owns its state), the point ledger, levels, credits.
CREATE TABLE dj_sessions (
    id uuid PRIMARY KEY,
    room_id uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    mode text NOT NULL CHECK (mode IN ('fan', 'artist', 'public')),
    started_by uuid NOT NULL REFERENCES users (id),
    started_at timestamptz NOT NULL,
    ended_at timestamptz,
    end_reason text
);
CREATE UNIQUE INDEX dj_sessions_one_live_per_room ON dj_sessions (room_id) WHERE ended_at IS NULL;

CREATE TABLE user_progressions (
    user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    total_points integer NOT NULL DEFAULT 0,
    seasonal_points integer NOT NULL DEFAULT 0,
    season text NOT NULL DEFAULT '',
    current_level integer NOT NULL DEFAULT 1,
    credits_balance integer NOT NULL DEFAULT 0 CHECK (credits_balance >= 0),
    premium_until timestamptz,
    last_level_up_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Append-only. One row per (user, event type, source, voter): replays, retries and
-- vote flips can never count twice.
CREATE TABLE point_transactions (
    id bigserial PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    event_type text NOT NULL CHECK (event_type IN
        ('track_played', 'upvote_received', 'downvote_received', 'playlist_add', 'level_up_bonus')),
    points integer NOT NULL,
    source_id text NOT NULL,
    voter_id text NOT NULL DEFAULT '',
    room_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, event_type, source_id, voter_id)
);
CREATE INDEX point_transactions_user_idx ON point_transactions (user_id, id DESC);
CREATE INDEX point_transactions_room_idx ON point_transactions (room_id) WHERE room_id IS NOT NULL;

CREATE TABLE credit_transactions (
    id bigserial PRIMARY KEY,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type text NOT NULL CHECK (type IN
        ('earned_level_up', 'earned_seasonal', 'redeemed_premium', 'expired', 'admin_adjustment')),
    credits integer NOT NULL,
    description text,
    source_id text,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, type, source_id)
);
CREATE INDEX credit_transactions_user_idx ON credit_transactions (user_id, id DESC);
