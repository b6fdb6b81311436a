-- Global search (REST.md "Search"): every searchable row carries a weighted tsvector and the
-- trigrams of its name (stored generated columns; a profile's by trigger, as they take the
-- username from users), so a row is searchable in the transaction that writes it; a vocabulary
-- of the words those rows hold (kept by triggers, with their trigrams) turns a typo into the
-- words it may mean. storage/search.py reads them.
--
-- The embedded Postgres ships no pg_trgm, so trigrams are made here the way pg_trgm makes them:
-- lower-case, split on anything not a letter or digit, each word padded with two spaces before
-- and one after, the distinct 3-character windows.
--
-- Text search uses the 'simple' configuration: names (rooms, artists, people, tracks) are not
-- English prose. 'english' would stem them ('Tems' -> 'tem', 'Slowdive' -> 'slowdiv', 'Massive
-- Attack' -> 'massiv') and drop stop words ('The The' would be nothing, 'Men I Trust' two
-- words); prefix queries and trigram similarity cover what stemming helps with (beat -> beats).

CREATE FUNCTION search_trigrams(input text) RETURNS text[]
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    word text;
    padded text;
    trigram text;
    found text[] := '{}';
BEGIN
    FOREACH word IN ARRAY regexp_split_to_array(lower(input), '[^[:alnum:]]+') LOOP
        CONTINUE WHEN word = '';
        padded := '  ' || word || ' ';
        FOR i IN 1 .. char_length(padded) - 2 LOOP
            trigram := substr(padded, i, 3);
            IF NOT trigram = ANY (found) THEN
                found := found || trigram;
            END IF;
        END LOOP;
    END LOOP;
    RETURN found;
END $$;

-- How well a name's trigrams (a tsvector of them) match the query's, 0 to 1: mostly how much of
-- the query the name holds (a word similarity: 'jaz' is three quarters in 'Jazz Cellar'), partly
-- pg_trgm's similarity(), shared over all (of two names that hold the query, the one with less
-- besides ranks first). Counted with ts_delete, in C: the name's trigrams left once the query's
-- are taken out are the ones not shared.
CREATE FUNCTION search_name_match(query text[], name tsvector) RETURNS double precision
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    rest integer;
    shared integer;
BEGIN
    IF cardinality(query) = 0 THEN
        RETURN 0;
    END IF;
    rest := length(ts_delete(name, query));
    shared := length(name) - rest;
    RETURN 0.6 * shared::double precision / cardinality(query)
         + 0.4 * shared::double precision / (cardinality(query) + rest);
END $$;

-- Labels (tags, genres) as one text for to_tsvector; array_to_string is only STABLE in general.
CREATE FUNCTION search_labels(labels text[]) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN array_to_string(labels, ' ');

-- Every word (lexeme) any searchable row holds, except words with digits: those are handles and
-- numbers (maria123, vol3, 2024), where a near miss is another thing rather than a typo, and they
-- would be most of the vocabulary. Prefix search still finds them.
--
-- The GIN indexes here take each row as it is written (fastupdate off): with the default pending
-- list, every search would scan the rows written since the last vacuum (4 MB of them at worst),
-- which cost a search ~15 ms per table after a bulk load; a write costs a little more instead.
CREATE TABLE search_words (
    word text PRIMARY KEY,
    trigrams text[] NOT NULL GENERATED ALWAYS AS (search_trigrams(word)) STORED
);
CREATE INDEX search_words_trigrams_idx ON search_words USING gin (trigrams) WITH (fastupdate = off);

-- The vocabulary's words most like a query word (pg_trgm's similarity(), at least ``threshold``),
-- best first. Candidates come through the trigram index. A word at least ``threshold`` similar
-- shares at least ceil(threshold * n) of the query word's n trigrams, so the index is probed with
-- all but the (that many, less one) trigrams most words have (ANALYZE's element statistics): each
-- such word still shares one probed trigram, and the probe skips the longest posting lists.
CREATE FUNCTION search_similar_words(query_word text, threshold double precision, max_words integer)
    RETURNS TABLE (word text, similarity double precision)
    LANGUAGE sql STABLE STRICT AS $$
    WITH query AS MATERIALIZED (
        SELECT t AS trigrams, array_to_tsvector(t) AS vector FROM search_trigrams(query_word) AS t),
    stats AS (
        SELECT s.most_common_elems::text::text[] AS elems, s.most_common_elem_freqs AS freqs
        FROM pg_stats s
        WHERE s.schemaname = current_schema() AND s.tablename = 'search_words'
          AND s.attname = 'trigrams'),
    probe AS MATERIALIZED (
        SELECT ARRAY(
            SELECT t FROM unnest(query.trigrams) AS t
            ORDER BY coalesce((SELECT st.freqs[array_position(st.elems, t)] FROM stats st), 0), t
            LIMIT cardinality(query.trigrams)
                  - greatest(ceil(threshold * cardinality(query.trigrams) - 1e-9)::integer - 1, 0)
        ) AS trigrams
        FROM query),
    candidates AS (
        SELECT sw.word,
               cardinality(query.trigrams) - length(ts_delete(query.vector, sw.trigrams)) AS shared,
               cardinality(query.trigrams) + cardinality(sw.trigrams) AS total
        FROM query, probe, search_words sw
        WHERE sw.trigrams && probe.trigrams
        OFFSET 0)  -- a fence: ts_delete once per candidate, not once per use
    SELECT word, shared::double precision / (total - shared) AS similarity
    FROM candidates
    WHERE shared::double precision / (total - shared) >= threshold
    ORDER BY 2 DESC, 1
    LIMIT max_words
$$;

-- Every word of a row's tsvector joins the vocabulary, in the row's own transaction (in order:
-- two rows bringing the same new words queue on the first, rather than deadlock on two).
CREATE FUNCTION search_learn_words() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_words (word)
    SELECT w FROM unnest(tsvector_to_array(NEW.search_doc)) AS w WHERE w !~ '[0-9]' ORDER BY w
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

-- Weights: A the name, B tags and genres (a track's artist), C the description.
ALTER TABLE rooms
    ADD COLUMN search_doc tsvector NOT NULL GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', name), 'A')
        || setweight(to_tsvector('simple', search_labels(tags || genres)), 'B')
        || setweight(to_tsvector('simple', coalesce(description, '')), 'C')) STORED,
    ADD COLUMN search_trgm tsvector NOT NULL GENERATED ALWAYS AS (
        array_to_tsvector(search_trigrams(name))) STORED;
CREATE INDEX rooms_search_idx ON rooms USING gin (search_doc) WITH (fastupdate = off)
    WHERE deleted_at IS NULL;

ALTER TABLE artist_profiles
    ADD COLUMN search_doc tsvector NOT NULL GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', artist_name), 'A')) STORED,
    ADD COLUMN search_trgm tsvector NOT NULL GENERATED ALWAYS AS (
        array_to_tsvector(search_trigrams(artist_name))) STORED;
CREATE INDEX artist_profiles_search_idx ON artist_profiles USING gin (search_doc) WITH (fastupdate = off);

ALTER TABLE playlists
    ADD COLUMN search_doc tsvector NOT NULL GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', name), 'A')
        || setweight(to_tsvector('simple', coalesce(description, '')), 'C')) STORED,
    ADD COLUMN search_trgm tsvector NOT NULL GENERATED ALWAYS AS (
        array_to_tsvector(search_trigrams(name))) STORED;
CREATE INDEX playlists_search_idx ON playlists USING gin (search_doc) WITH (fastupdate = off);

ALTER TABLE track_refs
    ADD COLUMN search_doc tsvector NOT NULL GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', title), 'A')
        || setweight(to_tsvector('simple', artist), 'B')) STORED,
    ADD COLUMN search_trgm tsvector NOT NULL GENERATED ALWAYS AS (
        array_to_tsvector(search_trigrams(title || ' ' || artist))) STORED;
CREATE INDEX track_refs_search_idx ON track_refs USING gin (search_doc) WITH (fastupdate = off);

-- A user is found by username or display name: both on the profile, so one index finds either
-- (a trigger, as the username lives in users; usernames do not change, but if one did, the
-- profile would follow).
ALTER TABLE profiles
    ADD COLUMN search_doc tsvector NOT NULL DEFAULT '',
    ADD COLUMN search_trgm tsvector NOT NULL DEFAULT '';
CREATE INDEX profiles_search_idx ON profiles USING gin (search_doc) WITH (fastupdate = off);

CREATE FUNCTION profiles_search_fields() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    names text := coalesce((SELECT username FROM users WHERE id = NEW.user_id), '')
                  || ' ' || coalesce(NEW.display_name, '');
BEGIN
    NEW.search_doc := setweight(to_tsvector('simple', names), 'A');
    NEW.search_trgm := array_to_tsvector(search_trigrams(names));
    RETURN NEW;
END $$;
CREATE TRIGGER profiles_search_fields BEFORE INSERT OR UPDATE OF display_name ON profiles
    FOR EACH ROW EXECUTE FUNCTION profiles_search_fields();
UPDATE profiles SET display_name = display_name;

CREATE FUNCTION users_search_rename() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE profiles SET display_name = display_name WHERE user_id = NEW.id;
    RETURN NULL;
END $$;
CREATE TRIGGER users_search_rename AFTER UPDATE OF username ON users
    FOR EACH ROW WHEN (NEW.username IS DISTINCT FROM OLD.username)
    EXECUTE FUNCTION users_search_rename();

INSERT INTO search_words (word)
SELECT DISTINCT w FROM (
    SELECT unnest(tsvector_to_array(search_doc)) FROM rooms
    UNION ALL SELECT unnest(tsvector_to_array(search_doc)) FROM artist_profiles
    UNION ALL SELECT unnest(tsvector_to_array(search_doc)) FROM playlists
    UNION ALL SELECT unnest(tsvector_to_array(search_doc)) FROM track_refs
    UNION ALL SELECT unnest(tsvector_to_array(search_doc)) FROM profiles) AS existing (w)
WHERE w !~ '[0-9]';

CREATE TRIGGER rooms_search_words AFTER INSERT ON rooms
    FOR EACH ROW EXECUTE FUNCTION search_learn_words();
CREATE TRIGGER rooms_search_words_changed AFTER UPDATE ON rooms
    FOR EACH ROW WHEN (NEW.search_doc IS DISTINCT FROM OLD.search_doc)
    EXECUTE FUNCTION search_learn_words();
CREATE TRIGGER artist_profiles_search_words AFTER INSERT ON artist_profiles
    FOR EACH ROW EXECUTE FUNCTION search_learn_words();
CREATE TRIGGER artist_profiles_search_words_changed AFTER UPDATE ON artist_profiles
    FOR EACH ROW WHEN (NEW.search_doc IS DISTINCT FROM OLD.search_doc)
    EXECUTE FUNCTION search_learn_words();
CREATE TRIGGER playlists_search_words AFTER INSERT ON playlists
    FOR EACH ROW EXECUTE FUNCTION search_learn_words();
CREATE TRIGGER playlists_search_words_changed AFTER UPDATE ON playlists
    FOR EACH ROW WHEN (NEW.search_doc IS DISTINCT FROM OLD.search_doc)
    EXECUTE FUNCTION search_learn_words();
CREATE TRIGGER track_refs_search_words AFTER INSERT ON track_refs
    FOR EACH ROW EXECUTE FUNCTION search_learn_words();
CREATE TRIGGER track_refs_search_words_changed AFTER UPDATE ON track_refs
    FOR EACH ROW WHEN (NEW.search_doc IS DISTINCT FROM OLD.search_doc)
    EXECUTE FUNCTION search_learn_words();
CREATE TRIGGER profiles_search_words AFTER INSERT ON profiles
    FOR EACH ROW EXECUTE FUNCTION search_learn_words();
CREATE TRIGGER profiles_search_words_changed AFTER UPDATE ON profiles
    FOR EACH ROW WHEN (NEW.search_doc IS DISTINCT FROM OLD.search_doc)
    EXECUTE FUNCTION search_learn_words();
