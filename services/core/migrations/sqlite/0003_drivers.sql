-- Drivers' accounts for the public API and website, and their sign-in sessions.
--
-- Kept in step with ../mysql/0003_drivers.sql: same tables, columns, keys and checks;
-- comments on the columns are there. Times are fixed-width RFC 3339 UTC text written by the
-- storage layer. Emails compare case-insensitively (COLLATE NOCASE), as MySQL's collation does.

CREATE TABLE drivers (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL COLLATE NOCASE UNIQUE CHECK (length(email) <= 255),
    name          TEXT    NOT NULL CHECK (length(name) <= 255),
    password_hash TEXT    NOT NULL,
    created_at    TEXT    NOT NULL,
    updated_at    TEXT    NOT NULL
);

CREATE TABLE driver_sessions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    driver_id   INTEGER NOT NULL REFERENCES drivers (id),
    chain       TEXT    NOT NULL CHECK (length(chain) = 32),
    token_hash  TEXT    NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    user_agent  TEXT    NULL CHECK (length(user_agent) <= 255),
    created_at  TEXT    NOT NULL,
    expires_at  TEXT    NOT NULL,
    revoked_at  TEXT    NULL,
    replaced_by INTEGER NULL REFERENCES driver_sessions (id)
);
CREATE INDEX ix_driver_sessions_driver ON driver_sessions (driver_id);
CREATE INDEX ix_driver_sessions_chain ON driver_sessions (chain);
