-- The notification center (REST.md "Notifications").
CREATE TABLE notifications (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type text NOT NULL CHECK (type IN ('follow', 'mention', 'reply', 'level_up', 'badge', 'join_request',
                                       'join_request_decision', 'report_resolved')),
    actor_id uuid REFERENCES users (id) ON DELETE SET NULL,
    data jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    read_at timestamptz,
    CHECK (actor_id IS NULL OR actor_id <> user_id)
);
CREATE INDEX notifications_user_idx ON notifications (user_id, created_at DESC, id DESC);
CREATE INDEX notifications_unread_idx ON notifications (user_id) WHERE read_at IS NULL;

-- A type a user switched off is not created for them. No row: on.
CREATE TABLE notification_preferences (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type text NOT NULL,
    enabled boolean NOT NULL,
    PRIMARY KEY (user_id, type)
);
