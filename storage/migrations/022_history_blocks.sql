-- Issue 18: room history (REST.md "Room history"), personal blocks (REST.md "Blocks"), and the
-- dj_live notification (PROTOCOL.md "Followed DJs").

-- Room history: a play is written at track.started and completed by track.ended (or by the
-- session's end while it played: 'stopped'), in the journal's transaction of that event.
ALTER TABLE track_plays
    ADD COLUMN ended_at timestamptz,
    ADD COLUMN end_reason text CHECK (end_reason IN ('completed', 'skipped', 'mod_skip', 'stopped')),
    ADD COLUMN votes jsonb;
CREATE INDEX track_plays_history_idx ON track_plays (room_id, started_at DESC, item_id DESC)
    WHERE ended_at IS NOT NULL;
CREATE INDEX track_plays_dj_history_idx ON track_plays (room_id, dj_id, started_at DESC, item_id DESC)
    WHERE ended_at IS NOT NULL;

UPDATE track_plays tp
SET ended_at = e.at, end_reason = e.payload -> 'data' ->> 'reason', votes = e.payload -> 'data' -> 'votes'
FROM room_events e
WHERE e.name = 'track.ended' AND e.room_id = tp.room_id
  AND e.payload -> 'data' ->> 'item_id' = tp.item_id;

-- Personal blocks: who hides whom.
CREATE TABLE user_blocks (
    blocker_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (blocker_id, blocked_id),
    CHECK (blocker_id <> blocked_id)
);
CREATE INDEX user_blocks_page_idx ON user_blocks (blocker_id, created_at DESC, blocked_id DESC);
CREATE INDEX user_blocks_blocked_idx ON user_blocks (blocked_id);

-- dj_live: a new notification type, at most one per follower and DJ per hour.
ALTER TABLE notifications DROP CONSTRAINT notifications_type_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_type_check CHECK (type IN (
    'follow', 'mention', 'reply', 'level_up', 'badge', 'join_request', 'join_request_decision',
    'report_resolved', 'dj_live'));
CREATE INDEX notifications_dj_live_idx ON notifications (user_id, actor_id, created_at DESC)
    WHERE type = 'dj_live';
