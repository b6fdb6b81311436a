-- Search on pg_trgm, which the embedded Postgres ships now (a DATABASE_URL server needs it too:
-- it is a trusted extension, so the database's owner may create it). 016 made trigrams by hand
-- in PL/pgSQL; pg_trgm makes the same ones (lower-case words of letters and digits, padded with
-- two spaces before and one after) in C. What changes:
--   * the vocabulary is found by a gin_trgm_ops index and pg_trgm's % (similarity()) instead of
--     a trigram array column and search_similar_words();
--   * a name's match is word_similarity() and similarity() of the name itself (storage/search.py),
--     so the search_trgm columns go; a profile keeps its names (username and display name, the
--     username coming from users) as text for it, in search_name.
-- The weighted tsvectors (search_doc), their indexes and the vocabulary's triggers stay.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

ALTER TABLE search_words DROP COLUMN trigrams;  -- and its index
-- As in 016, the index takes each word as it is written (fastupdate off): no pending list for
-- every search to scan after a bulk load.
CREATE INDEX search_words_trgm_idx ON search_words USING gin (word gin_trgm_ops) WITH (fastupdate = off);

ALTER TABLE rooms DROP COLUMN search_trgm;
ALTER TABLE artist_profiles DROP COLUMN search_trgm;
ALTER TABLE playlists DROP COLUMN search_trgm;
ALTER TABLE track_refs DROP COLUMN search_trgm;

ALTER TABLE profiles ADD COLUMN search_name text NOT NULL DEFAULT '';

CREATE OR REPLACE FUNCTION profiles_search_fields() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    names text := coalesce((SELECT username FROM users WHERE id = NEW.user_id), '')
                  || ' ' || coalesce(NEW.display_name, '');
BEGIN
    NEW.search_doc := setweight(to_tsvector('simple', names), 'A');
    NEW.search_name := names;
    RETURN NEW;
END $$;
UPDATE profiles SET display_name = display_name;
ALTER TABLE profiles DROP COLUMN search_trgm;

DROP FUNCTION search_similar_words(text, double precision, integer);
DROP FUNCTION search_name_match(text[], tsvector);
DROP FUNCTION search_trigrams(text);
