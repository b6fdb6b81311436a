-- Asking to join a private room, and the answer.
CREATE TABLE room_join_requests (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    room_id uuid NOT NULL REFERENCES rooms (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    message text,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'denied')),
    reason text,
    decided_by uuid REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    decided_at timestamptz
);
CREATE UNIQUE INDEX room_join_requests_one_pending ON room_join_requests (room_id, user_id) WHERE status = 'pending';
CREATE INDEX room_join_requests_room_idx ON room_join_requests (room_id, created_at, id);
