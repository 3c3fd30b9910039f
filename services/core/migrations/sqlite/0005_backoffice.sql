-- What the Back Office needs: operators' signed-in sessions (only the SHA-256 of the cookie's
-- session id is stored), and the recent OCPP messages of each charger.
--
-- Kept in step with ../mysql/0005_backoffice.sql: same columns, keys and checks;
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

CREATE TABLE ocpp_messages (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    charge_point_id INTEGER NOT NULL REFERENCES charge_points (id) ON DELETE CASCADE,
    direction       TEXT    NOT NULL CHECK (direction IN ('in', 'out')),
    message_type    TEXT    NOT NULL CHECK (length(message_type) <= 10),
    action          TEXT    NULL CHECK (length(action) <= 64),
    message_id      TEXT    NULL CHECK (length(message_id) <= 64),
    body            TEXT    NOT NULL,
    truncated       INTEGER NOT NULL CHECK (truncated IN (0, 1)),
    at              TEXT    NOT NULL
);
CREATE INDEX ix_ocpp_messages_charge_point ON ocpp_messages (charge_point_id, id);
