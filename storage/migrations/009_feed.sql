-- The newsfeed (REST.md "Newsfeed"). Feed events are written by triggers on the rows they
-- report, so each is in the same transaction as its cause whatever path wrote it (REST, the
-- journal's batch, an implicit join on a socket).
CREATE TABLE feed_events (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    type text NOT NULL CHECK (type IN ('room_created', 'room_live_started', 'user_joined_room', 'track_added',
                                       'dj_set_started', 'chat_pinned', 'playlist_created', 'user_followed')),
    actor_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    room_id uuid REFERENCES rooms (id) ON DELETE CASCADE,
    playlist_id uuid REFERENCES playlists (id) ON DELETE CASCADE,
    track_id uuid REFERENCES track_refs (id),
    target_user_id uuid REFERENCES users (id) ON DELETE CASCADE,
    session_id uuid,
    -- the type and its target; events of one key within an hour of the newest of them form one
    -- group (group_id, fixed when written), shown as one feed item
    collapsed_key text NOT NULL,
    group_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX feed_events_actor_idx ON feed_events (actor_id, created_at DESC, id DESC);
CREATE INDEX feed_events_room_idx ON feed_events (room_id, created_at DESC, id DESC) WHERE room_id IS NOT NULL;
CREATE INDEX feed_events_key_idx ON feed_events (collapsed_key, created_at DESC);
CREATE INDEX feed_events_group_idx ON feed_events (group_id);

CREATE TABLE feed_reactions (
    event_id uuid NOT NULL REFERENCES feed_events (id) ON DELETE CASCADE,
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type text NOT NULL CHECK (type IN ('clap', 'fire', 'heart', 'star', 'wave')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, user_id, type)
);

CREATE FUNCTION feed_add(kind text, actor uuid, room uuid, playlist uuid, track uuid, target uuid,
                         session uuid, key_target text, at timestamptz DEFAULT clock_timestamp())
RETURNS uuid LANGUAGE plpgsql AS $$
DECLARE
    key text := kind || ':' || key_target;
    grp uuid;
    made uuid;
BEGIN
    SELECT group_id INTO grp FROM feed_events
    WHERE collapsed_key = key AND created_at BETWEEN at - interval '1 hour' AND at
    ORDER BY created_at DESC LIMIT 1;
    -- every event of a group is within one hour of its newest: join only if its oldest still is
    IF grp IS NOT NULL
       AND (SELECT min(created_at) FROM feed_events WHERE group_id = grp) < at - interval '1 hour' THEN
        grp := NULL;
    END IF;
    INSERT INTO feed_events (type, actor_id, room_id, playlist_id, track_id, target_user_id, session_id,
                             collapsed_key, group_id, created_at)
    VALUES (kind, actor, room, playlist, track, target, session, key, coalesce(grp, gen_random_uuid()), at)
    RETURNING id INTO made;
    RETURN made;
END $$;

CREATE FUNCTION feed_on_room() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM feed_add('room_created', NEW.owner_id, NEW.id, NULL, NULL, NULL, NULL, NEW.id::text);
    RETURN NULL;
END $$;
CREATE TRIGGER feed_room AFTER INSERT ON rooms FOR EACH ROW EXECUTE FUNCTION feed_on_room();

CREATE FUNCTION feed_on_membership() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM feed_add('user_joined_room', NEW.user_id, NEW.room_id, NULL, NULL, NULL, NULL, NEW.room_id::text);
    RETURN NULL;
END $$;
-- (the owner's membership comes with the room: room_created says it)
CREATE TRIGGER feed_membership AFTER INSERT ON room_memberships
    FOR EACH ROW WHEN (NEW.role <> 'owner') EXECUTE FUNCTION feed_on_membership();

CREATE FUNCTION feed_on_playlist() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM feed_add('playlist_created', NEW.owner_id, NULL, NEW.id, NULL, NULL, NULL, NEW.id::text);
    RETURN NULL;
END $$;
CREATE TRIGGER feed_playlist AFTER INSERT ON playlists FOR EACH ROW EXECUTE FUNCTION feed_on_playlist();

CREATE FUNCTION feed_on_playlist_item() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM feed_add('track_added', NEW.added_by, NULL, NEW.playlist_id, NEW.track_ref_id, NULL, NULL,
                     NEW.playlist_id::text);
    RETURN NULL;
END $$;
CREATE TRIGGER feed_playlist_item AFTER INSERT ON playlist_items
    FOR EACH ROW WHEN (NEW.added_by IS NOT NULL) EXECUTE FUNCTION feed_on_playlist_item();

CREATE FUNCTION feed_on_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM feed_add('user_followed', NEW.follower_id, NULL, NULL, NULL, NEW.followee_id, NULL,
                     NEW.followee_id::text);
    RETURN NULL;
END $$;
CREATE TRIGGER feed_follow AFTER INSERT ON follows FOR EACH ROW EXECUTE FUNCTION feed_on_follow();

-- From the journal: a session going live, a pin, and a DJ's first turn in a session.
CREATE FUNCTION feed_on_room_event() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    d jsonb := NEW.payload -> 'data';
    dj uuid;
    live uuid;
BEGIN
    IF NEW.name = 'session.started' THEN
        PERFORM feed_add('room_live_started', (d ->> 'host_id')::uuid, NEW.room_id, NULL, NULL, NULL,
                         (d ->> 'session_id')::uuid, NEW.room_id::text);
    ELSIF NEW.name = 'chat.pinned' THEN
        PERFORM feed_add('chat_pinned', (d ->> 'by')::uuid, NEW.room_id, NULL, NULL, NULL, NULL, NEW.room_id::text);
    ELSIF NEW.name = 'track.started' THEN
        dj := (d ->> 'dj_id')::uuid;
        SELECT session_id INTO live FROM feed_events
        WHERE type = 'room_live_started' AND room_id = NEW.room_id ORDER BY created_at DESC LIMIT 1;
        IF live IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM feed_events WHERE type = 'dj_set_started' AND actor_id = dj AND session_id = live
        ) THEN
            PERFORM feed_add('dj_set_started', dj, NEW.room_id, NULL, (d -> 'item' -> 'track' ->> 'id')::uuid,
                             NULL, live, NEW.room_id::text);
        END IF;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER feed_room_event AFTER INSERT ON room_events
    FOR EACH ROW WHEN (NEW.name IN ('session.started', 'chat.pinned', 'track.started'))
    EXECUTE FUNCTION feed_on_room_event();

-- A feed page walks the newest events first and stops when the page is full.
CREATE INDEX feed_events_time_idx ON feed_events (created_at DESC, id DESC);
