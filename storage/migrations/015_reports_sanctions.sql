-- Site-wide sanctions on a user (bans, mutes, warnings) and the reports that lead to them.
-- Expiry needs no job: a ban or mute is in force while its end is in the future.
CREATE TABLE user_sanctions (
    user_id uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    banned_at timestamptz,            -- NULL: not banned
    banned_until timestamptz,         -- NULL while banned_at is set: banned for good
    ban_reason text,
    muted_until timestamptz,
    mute_reason text,
    warn_count integer NOT NULL DEFAULT 0 CHECK (warn_count >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- What the process mirrors in memory at start: only sanctions that may still be in force.
CREATE INDEX user_sanctions_active_idx ON user_sanctions (user_id)
    WHERE banned_at IS NOT NULL OR muted_until IS NOT NULL;

CREATE TABLE reports (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    reporter_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    target_type text NOT NULL CHECK (target_type IN ('user', 'message', 'room')),
    target_id uuid NOT NULL,
    reason text NOT NULL
        CHECK (reason IN ('spam', 'harassment', 'hate', 'sexual', 'violence', 'other')),
    description text CHECK (char_length(description) <= 2000),
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'actioned', 'dismissed')),
    action jsonb,
    resolved_by uuid REFERENCES users (id) ON DELETE SET NULL,
    resolved_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- One pending report per reporter and target, even under a race.
CREATE UNIQUE INDEX reports_pending_once ON reports (reporter_id, target_type, target_id)
    WHERE status = 'pending';
CREATE INDEX reports_queue_idx ON reports (status, created_at, id);
-- The hourly rate limit counts a reporter's recent reports.
CREATE INDEX reports_reporter_recent_idx ON reports (reporter_id, created_at);
