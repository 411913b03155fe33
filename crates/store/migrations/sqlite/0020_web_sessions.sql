-- Sessions of the web console. The cookie carries a random id; only its SHA-256 is stored,
-- so a copy of the database does not hand out live sessions. `token_version` is the
-- analyst's at login: a password change or a disabled account ends every session, as it ends
-- every API token. `csrf_token` is sent back with every form and mutation of the session.
CREATE TABLE web_sessions (
    id_hash        BLOB PRIMARY KEY NOT NULL,
    analyst_id     BLOB NOT NULL REFERENCES analysts(id) ON DELETE CASCADE,
    token_version  INTEGER NOT NULL,
    csrf_token     TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    last_seen_at   TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    user_agent     TEXT,
    client_ip      TEXT
) STRICT, WITHOUT ROWID;
CREATE INDEX web_sessions_analyst ON web_sessions (analyst_id);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);
