-- Chat history is read in the order everyone saw it live: the room's seq, not created_at
-- (a batch commits many messages with one timestamp). Every message has carried the seq of its
-- chat.message event since 002, written in the same transaction as that event's room_events row,
-- whose key (room_id, seq) makes it unique in its room: nothing to backfill.
CREATE UNIQUE INDEX messages_room_seq_idx ON messages (room_id, seq);
