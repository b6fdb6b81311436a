-- Every moderation act, live or REST, in one log.
CREATE TABLE moderation_log (
    id bigserial PRIMARY KEY,
    room_id uuid REFERENCES rooms (id) ON DELETE CASCADE,
    actor_id uuid NOT NULL REFERENCES users (id),
    action text NOT NULL,
    target_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    target_message_id uuid,
    reason text,
    details jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX moderation_log_room_idx ON moderation_log (room_id, id DESC);
CREATE INDEX moderation_log_target_idx ON moderation_log (target_user_id, id DESC);
