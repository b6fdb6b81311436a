-- Closed seasons: the final board, frozen once, and what it awarded.
CREATE TABLE seasons (
    season text PRIMARY KEY CHECK (season ~ '^\d{4}-Q[1-4]$'),
    closed_at timestamptz,
    awarded jsonb
);
CREATE TABLE season_results (
    season text NOT NULL REFERENCES seasons (season),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    rank integer NOT NULL,
    score integer NOT NULL,
    tier text NOT NULL CHECK (tier IN ('gold', 'silver', 'bronze', 'participant')),
    PRIMARY KEY (season, user_id)
);
CREATE INDEX season_results_user_idx ON season_results (user_id, rank);
