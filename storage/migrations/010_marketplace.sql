-- The artist marketplace (REST.md "Marketplace").
CREATE TABLE marketplace_items (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    artist_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type text NOT NULL CHECK (type IN ('merch', 'concert', 'track')),
    title text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description text CHECK (length(description) <= 5000),
    price numeric(10, 2) CHECK (price BETWEEN 0 AND 99999999.99),
    currency char(3) NOT NULL DEFAULT 'USD',
    external_url text,
    image_url text,
    metadata jsonb NOT NULL DEFAULT '{}',
    starts_at timestamptz,  -- a concert's metadata.starts_at, kept as a column for "upcoming"
    active boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (type <> 'concert' OR starts_at IS NOT NULL)
);
CREATE INDEX marketplace_items_newest_idx ON marketplace_items (created_at DESC, id DESC) WHERE active;
CREATE INDEX marketplace_items_artist_idx ON marketplace_items (artist_id, created_at DESC, id DESC);
CREATE INDEX marketplace_items_upcoming_idx ON marketplace_items (starts_at, id) WHERE active AND type = 'concert';
