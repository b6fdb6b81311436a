-- Badges a user holds: each code at most once per user (REST.md "Leaderboards, badges, seasons").
CREATE TABLE user_badges (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    badge_code text NOT NULL,
    awarded_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    metadata jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (user_id, badge_code)
);
CREATE INDEX user_badges_newest_idx ON user_badges (user_id, awarded_at DESC, badge_code);
