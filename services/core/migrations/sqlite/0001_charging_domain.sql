-- The charging domain's first schema: sites, chargers with their EVSEs and connectors, ID
-- tokens, transactions with meter values, Back Office operators, API keys and the audit log.
--
-- Kept in step with ../mysql/0001_charging_domain.sql: same tables, columns, keys and checks;
-- comments on the columns are there. Times are fixed-width RFC 3339 UTC text written by the
-- storage layer (never CURRENT_TIMESTAMP, which has another format and would sort apart).
-- Text compares case-insensitively (COLLATE NOCASE, ASCII only), as MySQL's collation does.
-- Ids use AUTOINCREMENT so a deleted row's id (an OCPP transactionId) is never handed out again.

CREATE TABLE locations (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL COLLATE NOCASE UNIQUE,
    address     TEXT    NOT NULL,
    city        TEXT    NOT NULL,
    postal_code TEXT    NOT NULL,
    country     TEXT    NOT NULL CHECK (length(country) = 3),
    latitude    REAL    NOT NULL CHECK (latitude BETWEEN -90 AND 90),
    longitude   REAL    NOT NULL CHECK (longitude BETWEEN -180 AND 180),
    time_zone   TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
);

CREATE TABLE charge_points (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    identity            TEXT    NOT NULL COLLATE NOCASE UNIQUE
                                CHECK (length(identity) BETWEEN 1 AND 48),
    location_id         INTEGER NULL REFERENCES locations (id),
    ocpp_password_hash  TEXT    NULL,
    registration_status TEXT    NOT NULL
                                CHECK (registration_status IN ('Accepted', 'Pending', 'Rejected')),
    vendor              TEXT    NULL CHECK (length(vendor) <= 50),
    model               TEXT    NULL CHECK (length(model) <= 50),
    serial_number       TEXT    NULL CHECK (length(serial_number) <= 50),
    firmware_version    TEXT    NULL CHECK (length(firmware_version) <= 50),
    ocpp_version        TEXT    NULL,
    last_seen_at        TEXT    NULL,
    created_at          TEXT    NOT NULL,
    updated_at          TEXT    NOT NULL
);
CREATE INDEX ix_charge_points_location ON charge_points (location_id);

CREATE TABLE evses (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    charge_point_id   INTEGER NOT NULL REFERENCES charge_points (id) ON DELETE CASCADE,
    evse_number       INTEGER NOT NULL CHECK (evse_number >= 1),
    status            TEXT    NOT NULL,
    status_updated_at TEXT    NULL,
    CONSTRAINT uq_evses_number UNIQUE (charge_point_id, evse_number)
);

CREATE TABLE connectors (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    evse_id          INTEGER NOT NULL REFERENCES evses (id) ON DELETE CASCADE,
    connector_number INTEGER NOT NULL CHECK (connector_number >= 1),
    standard         TEXT    NOT NULL,
    format           TEXT    NOT NULL CHECK (format IN ('SOCKET', 'CABLE')),
    power_type       TEXT    NOT NULL CHECK (power_type IN ('AC_1_PHASE', 'AC_3_PHASE', 'DC')),
    max_voltage      INTEGER NOT NULL,
    max_amperage     INTEGER NOT NULL,
    max_power_w      INTEGER NULL,
    CONSTRAINT uq_connectors_number UNIQUE (evse_id, connector_number)
);

CREATE TABLE id_tokens (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    token       TEXT    NOT NULL COLLATE NOCASE UNIQUE CHECK (length(token) BETWEEN 1 AND 36),
    token_type  TEXT    NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('Accepted', 'Blocked', 'Expired', 'Invalid')),
    expires_at  TEXT    NULL,
    group_token TEXT    NULL COLLATE NOCASE CHECK (length(group_token) <= 36),
    created_at  TEXT    NOT NULL
);

CREATE TABLE transactions (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    charge_point_id INTEGER NOT NULL REFERENCES charge_points (id),
    evse_number     INTEGER NOT NULL,
    id_token        TEXT    NOT NULL COLLATE NOCASE CHECK (length(id_token) <= 36),
    meter_start_wh  INTEGER NOT NULL,
    meter_stop_wh   INTEGER NULL,
    started_at      TEXT    NOT NULL,
    stopped_at      TEXT    NULL,
    stop_reason     TEXT    NULL,
    created_at      TEXT    NOT NULL,
    CONSTRAINT uq_transactions_start UNIQUE (charge_point_id, evse_number, started_at)
);
CREATE INDEX ix_transactions_id_token ON transactions (id_token, started_at);
CREATE INDEX ix_transactions_started_at ON transactions (started_at);

CREATE TABLE meter_values (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id  INTEGER NULL REFERENCES transactions (id) ON DELETE CASCADE,
    charge_point_id INTEGER NOT NULL REFERENCES charge_points (id),
    evse_number     INTEGER NOT NULL,
    sampled_at      TEXT    NOT NULL,
    measurand       TEXT    NOT NULL,
    phase           TEXT    NULL,
    unit            TEXT    NOT NULL,
    value           REAL    NOT NULL,
    context         TEXT    NULL,
    location        TEXT    NULL
);
CREATE INDEX ix_meter_values_transaction ON meter_values (transaction_id, sampled_at);
CREATE INDEX ix_meter_values_charge_point ON meter_values (charge_point_id, sampled_at);

CREATE TABLE operators (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL COLLATE NOCASE UNIQUE,
    display_name  TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    TEXT    NOT NULL
);

CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT    NOT NULL,
    prefix       TEXT    NOT NULL COLLATE NOCASE UNIQUE CHECK (length(prefix) <= 16),
    key_hash     TEXT    NOT NULL CHECK (length(key_hash) = 64),
    scopes       TEXT    NOT NULL,
    operator_id  INTEGER NULL REFERENCES operators (id),
    created_at   TEXT    NOT NULL,
    last_used_at TEXT    NULL,
    revoked_at   TEXT    NULL
);
CREATE INDEX ix_api_keys_operator ON api_keys (operator_id);

CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    occurred_at TEXT    NOT NULL,
    actor       TEXT    NOT NULL,
    action      TEXT    NOT NULL,
    target      TEXT    NOT NULL,
    details     TEXT    NOT NULL,
    outcome     TEXT    NOT NULL CHECK (outcome IN ('success', 'denied', 'failure'))
);
CREATE INDEX ix_audit_log_occurred_at ON audit_log (occurred_at);
