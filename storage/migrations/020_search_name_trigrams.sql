-- Search scores fewer names with pg_trgm (storage/search.py). 018 scores every candidate's name
-- with word_similarity() and similarity(), which make the name's trigrams again at each call
-- (2-4 us): a common word has thousands of candidates, of which a page shows five. Each searchable
-- row now carries its name's trigrams as pg_trgm makes them (show_trgm, as a tsvector of trigram
-- lexemes), so a search counts the trigrams a name shares with the query in C (the length of the
-- union of two tsvectors) for every candidate. That count gives similarity() exactly and an upper
-- bound of word_similarity() (a part of the name shares no more than all of it), so an upper bound
-- of the score; only the candidates whose bound reaches the page are scored with pg_trgm's own
-- functions, so scores and order are 018's. The names are those 018 matches (a profile's is
-- search_name, which its BEFORE trigger sets before generated columns are computed). The columns
-- are not called search_trgm, 016's name for its own hand-made trigrams, which 018 dropped.

ALTER TABLE rooms
    ADD COLUMN search_name_trigrams tsvector NOT NULL GENERATED ALWAYS AS (
        array_to_tsvector(show_trgm(name))) STORED;

ALTER TABLE artist_profiles
    ADD COLUMN search_name_trigrams tsvector NOT NULL GENERATED ALWAYS AS (
        array_to_tsvector(show_trgm(artist_name))) STORED;

ALTER TABLE playlists
    ADD COLUMN search_name_trigrams tsvector NOT NULL GENERATED ALWAYS AS (
        array_to_tsvector(show_trgm(name))) STORED;

ALTER TABLE track_refs
    ADD COLUMN search_name_trigrams tsvector NOT NULL GENERATED ALWAYS AS (
        array_to_tsvector(show_trgm(title || ' ' || artist))) STORED;

ALTER TABLE profiles
    ADD COLUMN search_name_trigrams tsvector NOT NULL GENERATED ALWAYS AS (
        array_to_tsvector(show_trgm(search_name))) STORED;

-- The first tier (every query word in the name) is found in the name's own tsvector, through
-- these indexes: the tsvector's index holds no weights, so asking it for words weighted A (the
-- name) rechecks every row holding them anywhere (a genre's rooms: three times those named for
-- it). Each indexes the words search_doc weights A. No pending list, as in 016.
CREATE INDEX rooms_search_name_idx ON rooms USING gin (to_tsvector('simple'::regconfig, name))
    WITH (fastupdate = off) WHERE deleted_at IS NULL;
CREATE INDEX artist_profiles_search_name_idx ON artist_profiles
    USING gin (to_tsvector('simple'::regconfig, artist_name)) WITH (fastupdate = off);
CREATE INDEX playlists_search_name_idx ON playlists
    USING gin (to_tsvector('simple'::regconfig, name)) WITH (fastupdate = off);
CREATE INDEX track_refs_search_name_idx ON track_refs
    USING gin (to_tsvector('simple'::regconfig, title)) WITH (fastupdate = off);
CREATE INDEX profiles_search_name_idx ON profiles
    USING gin (to_tsvector('simple'::regconfig, search_name)) WITH (fastupdate = off);
