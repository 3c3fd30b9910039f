-- Operators' signed-in sessions in the Back Office; only the SHA-256 of the cookie's session
-- id is stored.
--
-- Kept in step with ../mysql/0005_backoffice_sessions.sql: same columns, keys and checks;
-- comments on the columns are there.

CREATE TABLE operator_sessions (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    operator_id  INTEGER NOT NULL REFERENCES operators (id),
    token_hash   TEXT    NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    csrf_token   TEXT    NOT NULL CHECK (length(csrf_token) = 64),
    client_ip    TEXT    NULL CHECK (length(client_ip) <= 45),
    user_agent   TEXT    NULL CHECK (length(user_agent) <= 255),
    created_at   TEXT    NOT NULL,
    last_seen_at TEXT    NOT NULL,
    expires_at   TEXT    NOT NULL,
    revoked_at   TEXT    NULL
);
CREATE INDEX ix_operator_sessions_operator ON operator_sessions (operator_id);
