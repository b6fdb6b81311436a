-- Accounts a user linked on music services; tokens only ever stored sealed (AES-GCM).
CREATE TABLE linked_accounts (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider text NOT NULL CHECK (provider IN ('spotify', 'apple_music', 'youtube_music', 'deezer', 'bandcamp')),
    provider_user_id text NOT NULL,
    access_token bytea NOT NULL,
    refresh_token bytea,
    expires_at timestamptz,
    last_sync_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, provider)
);
