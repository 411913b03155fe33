-- Foundation: tenants, analysts, API keys.
CREATE TABLE tenants (
    id          uuid PRIMARY KEY,
    slug        text NOT NULL UNIQUE,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE analysts (
    id             uuid PRIMARY KEY,
    tenant_id      uuid NOT NULL REFERENCES tenants(id),
    username       text NOT NULL UNIQUE,
    display_name   text NOT NULL,
    password_hash  text NOT NULL,
    role           text NOT NULL CHECK (role IN ('admin', 'analyst', 'viewer')),
    is_active      boolean NOT NULL DEFAULT true,
    token_version  bigint NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    last_login_at  timestamptz
);
CREATE INDEX analysts_tenant ON analysts (tenant_id, id);

CREATE TABLE analyst_tenants (
    analyst_id  uuid NOT NULL REFERENCES analysts(id) ON DELETE CASCADE,
    tenant_id   uuid NOT NULL REFERENCES tenants(id),
    PRIMARY KEY (analyst_id, tenant_id)
);

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    tenant_id     uuid NOT NULL REFERENCES tenants(id),
    name          text NOT NULL,
    prefix        text NOT NULL UNIQUE,
    digest        bytea NOT NULL,
    scopes        text NOT NULL,
    source        text,
    expires_at    timestamptz,
    revoked_at    timestamptz,
    created_by    uuid REFERENCES analysts(id),
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz
);
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, id);
