-- Foundation: tenants, analysts, API keys. Ids are UUID v7 stored as 16-byte BLOBs;
-- timestamps are RFC 3339 UTC text (sqlx's encoding), which sorts chronologically.
CREATE TABLE tenants (
    id          BLOB PRIMARY KEY NOT NULL,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL
) STRICT;

CREATE TABLE analysts (
    id             BLOB PRIMARY KEY NOT NULL,
    tenant_id      BLOB NOT NULL REFERENCES tenants(id),
    username       TEXT NOT NULL UNIQUE,
    display_name   TEXT NOT NULL,
    password_hash  TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('admin', 'analyst', 'viewer')),
    is_active      INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    token_version  INTEGER NOT NULL DEFAULT 0,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    last_login_at  TEXT
) STRICT;
CREATE INDEX analysts_tenant ON analysts (tenant_id, id);

CREATE TABLE analyst_tenants (
    analyst_id  BLOB NOT NULL REFERENCES analysts(id) ON DELETE CASCADE,
    tenant_id   BLOB NOT NULL REFERENCES tenants(id),
    PRIMARY KEY (analyst_id, tenant_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE api_keys (
    id            BLOB PRIMARY KEY NOT NULL,
    tenant_id     BLOB NOT NULL REFERENCES tenants(id),
    name          TEXT NOT NULL,
    prefix        TEXT NOT NULL UNIQUE,
    digest        BLOB NOT NULL,
    scopes        TEXT NOT NULL,
    source        TEXT,
    expires_at    TEXT,
    revoked_at    TEXT,
    created_by    BLOB REFERENCES analysts(id),
    created_at    TEXT NOT NULL,
    last_used_at  TEXT
) STRICT;
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, id);
