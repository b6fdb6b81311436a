-- Follows, likes and their exact counts (REST.md "Social").
CREATE TABLE follows (
    follower_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    followee_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    followee_type text NOT NULL CHECK (followee_type IN ('user', 'artist')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (follower_id, followee_id),
    CHECK (follower_id <> followee_id)
);
CREATE INDEX follows_followee_idx ON follows (followee_id, created_at DESC, follower_id DESC);
CREATE INDEX follows_follower_idx ON follows (follower_id, created_at DESC, followee_id DESC);

CREATE TABLE likes (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    entity_type text NOT NULL
        CHECK (entity_type IN ('track_ref', 'playlist', 'playlist_item', 'message', 'feed_event')),
    entity_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, entity_type, entity_id)
);
CREATE INDEX likes_entity_idx ON likes (entity_type, entity_id, created_at DESC, user_id DESC);
CREATE INDEX likes_user_idx ON likes (user_id, created_at DESC, entity_type, entity_id);

-- Moved in the same transaction as the follow or like they count; never recounted.
-- Follows count under entity_type 'user' (an artist is a user: one count of followers).
CREATE TABLE entity_stats (
    entity_type text NOT NULL,
    entity_id uuid NOT NULL,
    likes_count integer NOT NULL DEFAULT 0 CHECK (likes_count >= 0),
    follows_count integer NOT NULL DEFAULT 0 CHECK (follows_count >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entity_type, entity_id)
);
CREATE INDEX entity_stats_likes_idx ON entity_stats (entity_type, likes_count DESC);
