-- Leaderboards (REST.md "Leaderboards, badges, seasons"): scores kept per board in the
-- transaction of the award that moves them, so a board is one index range, never a recount.
-- board: global | seasonal | genre | room; scope: '' | the genre | the room id; season: '' | YYYY-Qn.
-- reached_at: when the user reached their current score (ties rank who got there first first).
CREATE TABLE leaderboard_scores (
    board text NOT NULL CHECK (board IN ('global', 'seasonal', 'genre', 'room')),
    scope text NOT NULL DEFAULT '',
    season text NOT NULL DEFAULT '',
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    score integer NOT NULL,
    reached_at timestamptz NOT NULL,
    PRIMARY KEY (board, scope, season, user_id)
);
CREATE INDEX leaderboard_scores_rank_idx
    ON leaderboard_scores (board, scope, season, score DESC, reached_at, user_id) WHERE score > 0;

INSERT INTO leaderboard_scores (board, scope, season, user_id, score, reached_at)
SELECT 'global', '', '', user_id, sum(points), max(created_at) FROM point_transactions GROUP BY user_id;
INSERT INTO leaderboard_scores (board, scope, season, user_id, score, reached_at)
SELECT 'seasonal', '', s, user_id, sum(points), max(created_at)
FROM (SELECT user_id, points, created_at,
             to_char(created_at AT TIME ZONE 'UTC', 'YYYY') || '-Q'
             || extract(quarter FROM created_at AT TIME ZONE 'UTC')::int AS s
      FROM point_transactions) p
GROUP BY s, user_id;
INSERT INTO leaderboard_scores (board, scope, season, user_id, score, reached_at)
SELECT 'room', room_id::text, '', user_id, sum(points), max(created_at)
FROM point_transactions WHERE room_id IS NOT NULL GROUP BY room_id, user_id;
INSERT INTO leaderboard_scores (board, scope, season, user_id, score, reached_at)
SELECT 'genre', g, '', p.user_id, sum(p.points), max(p.created_at)
FROM point_transactions p JOIN rooms r ON r.id = p.room_id, unnest(r.genres) AS g
GROUP BY g, p.user_id;
