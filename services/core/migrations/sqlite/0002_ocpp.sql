-- What the OCPP 1.6 central system keeps: the rest of BootNotification, the charger's security
-- profile and connector 0 status, firmware and diagnostics progress, a history of status
-- reports, the mirrored configuration keys, reservations, charging profiles and the local
-- authorization list; idempotent meter values.
--
-- Kept in step with ../mysql/0002_ocpp.sql: same tables, columns, keys and checks; comments on
-- the columns are there. Length checks stand in for MySQL's VARCHAR limits. Text in a key
-- (or looked up by it) is COLLATE NOCASE, so that the keys take the same values for equal as
-- MySQL's case-insensitive collation does.

ALTER TABLE charge_points ADD COLUMN security_profile INTEGER NOT NULL DEFAULT 1
    CHECK (security_profile BETWEEN 0 AND 3);
ALTER TABLE charge_points ADD COLUMN charge_box_serial_number TEXT NULL
    CHECK (length(charge_box_serial_number) <= 25);
ALTER TABLE charge_points ADD COLUMN iccid TEXT NULL CHECK (length(iccid) <= 20);
ALTER TABLE charge_points ADD COLUMN imsi TEXT NULL CHECK (length(imsi) <= 20);
ALTER TABLE charge_points ADD COLUMN meter_type TEXT NULL CHECK (length(meter_type) <= 25);
ALTER TABLE charge_points ADD COLUMN meter_serial_number TEXT NULL
    CHECK (length(meter_serial_number) <= 25);
ALTER TABLE charge_points ADD COLUMN status TEXT NULL CHECK (length(status) <= 32);
ALTER TABLE charge_points ADD COLUMN status_error_code TEXT NULL
    CHECK (length(status_error_code) <= 32);
ALTER TABLE charge_points ADD COLUMN status_updated_at TEXT NULL;
ALTER TABLE charge_points ADD COLUMN firmware_status TEXT NULL
    CHECK (length(firmware_status) <= 32);
ALTER TABLE charge_points ADD COLUMN firmware_status_at TEXT NULL;
ALTER TABLE charge_points ADD COLUMN diagnostics_status TEXT NULL
    CHECK (length(diagnostics_status) <= 32);
ALTER TABLE charge_points ADD COLUMN diagnostics_status_at TEXT NULL;
ALTER TABLE charge_points ADD COLUMN local_list_version INTEGER NULL;

ALTER TABLE evses ADD COLUMN error_code TEXT NULL CHECK (length(error_code) <= 32);
ALTER TABLE evses ADD COLUMN status_info TEXT NULL CHECK (length(status_info) <= 50);

CREATE TABLE connector_status_history (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    charge_point_id   INTEGER NOT NULL REFERENCES charge_points (id) ON DELETE CASCADE,
    connector_id      INTEGER NOT NULL CHECK (connector_id >= 0),
    status            TEXT    NOT NULL COLLATE NOCASE CHECK (length(status) <= 32),
    error_code        TEXT    NOT NULL COLLATE NOCASE CHECK (length(error_code) <= 32),
    info              TEXT    NULL CHECK (length(info) <= 50),
    vendor_id         TEXT    NULL CHECK (length(vendor_id) <= 255),
    vendor_error_code TEXT    NULL CHECK (length(vendor_error_code) <= 50),
    reported_at       TEXT    NULL,
    received_at       TEXT    NOT NULL,
    CONSTRAINT uq_connector_status_history_report
        UNIQUE (charge_point_id, connector_id, reported_at, status, error_code)
);
CREATE INDEX ix_connector_status_history_received
    ON connector_status_history (charge_point_id, connector_id, received_at);

CREATE TABLE charge_point_configuration (
    charge_point_id INTEGER NOT NULL REFERENCES charge_points (id) ON DELETE CASCADE,
    config_key      TEXT    NOT NULL COLLATE NOCASE CHECK (length(config_key) <= 50),
    value           TEXT    NULL CHECK (length(value) <= 500),
    readonly        INTEGER NOT NULL CHECK (readonly IN (0, 1)),
    updated_at      TEXT    NOT NULL,
    PRIMARY KEY (charge_point_id, config_key)
);

CREATE TABLE reservations (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    charge_point_id INTEGER NOT NULL REFERENCES charge_points (id),
    connector_id    INTEGER NOT NULL CHECK (connector_id >= 0),
    id_tag          TEXT    NOT NULL COLLATE NOCASE CHECK (length(id_tag) <= 20),
    parent_id_tag   TEXT    NULL COLLATE NOCASE CHECK (length(parent_id_tag) <= 20),
    expires_at      TEXT    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('Requested', 'Accepted', 'Faulted',
                                'Occupied', 'Rejected', 'Unavailable', 'Cancelled', 'Used',
                                'Expired')),
    transaction_id  INTEGER NULL REFERENCES transactions (id) ON DELETE SET NULL,
    created_at      TEXT    NOT NULL,
    updated_at      TEXT    NOT NULL
);
CREATE INDEX ix_reservations_charge_point ON reservations (charge_point_id, status, expires_at);
CREATE INDEX ix_reservations_expiry ON reservations (status, expires_at);
CREATE INDEX ix_reservations_transaction ON reservations (transaction_id);

CREATE TABLE charging_profiles (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    charge_point_id     INTEGER NOT NULL REFERENCES charge_points (id) ON DELETE CASCADE,
    connector_id        INTEGER NOT NULL CHECK (connector_id >= 0),
    charging_profile_id INTEGER NOT NULL,
    stack_level         INTEGER NOT NULL CHECK (stack_level >= 0),
    purpose             TEXT    NOT NULL
                        CHECK (purpose IN ('ChargePointMaxProfile', 'TxDefaultProfile', 'TxProfile')),
    kind                TEXT    NOT NULL CHECK (kind IN ('Absolute', 'Recurring', 'Relative')),
    recurrency          TEXT    NULL CHECK (recurrency IN ('Daily', 'Weekly')),
    valid_from          TEXT    NULL,
    valid_to            TEXT    NULL,
    transaction_id      INTEGER NULL,
    schedule            TEXT    NOT NULL,
    created_at          TEXT    NOT NULL,
    CONSTRAINT uq_charging_profiles_profile_id UNIQUE (charge_point_id, charging_profile_id),
    CONSTRAINT uq_charging_profiles_stack
        UNIQUE (charge_point_id, connector_id, purpose, stack_level)
);

CREATE TABLE local_list_entries (
    charge_point_id INTEGER NOT NULL REFERENCES charge_points (id) ON DELETE CASCADE,
    id_tag          TEXT    NOT NULL COLLATE NOCASE CHECK (length(id_tag) <= 20),
    status          TEXT    NULL CHECK (length(status) <= 16),
    expiry_date     TEXT    NULL,
    parent_id_tag   TEXT    NULL COLLATE NOCASE CHECK (length(parent_id_tag) <= 20),
    PRIMARY KEY (charge_point_id, id_tag)
);

ALTER TABLE transactions ADD COLUMN reservation_id INTEGER NULL;
ALTER TABLE transactions ADD COLUMN stop_id_token TEXT NULL COLLATE NOCASE
    CHECK (length(stop_id_token) <= 36);
ALTER TABLE transactions ADD COLUMN start_auth_status TEXT NULL
    CHECK (length(start_auth_status) <= 16);

-- meter_values gets a unique key over what identifies a sample, with phase, location and
-- context NOT NULL DEFAULT '' (NULLs never collide in a unique key). SQLite cannot change a
-- column, so the table is rebuilt: nothing refers to it, so dropping it touches no other table.
-- Rows that collide under the new key (resends stored before it existed) keep the first.
CREATE TABLE meter_values_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    transaction_id  INTEGER NULL REFERENCES transactions (id) ON DELETE CASCADE,
    charge_point_id INTEGER NOT NULL REFERENCES charge_points (id),
    evse_number     INTEGER NOT NULL,
    sampled_at      TEXT    NOT NULL,
    measurand       TEXT    NOT NULL COLLATE NOCASE,
    phase           TEXT    NOT NULL DEFAULT '' COLLATE NOCASE,
    unit            TEXT    NOT NULL,
    value           REAL    NOT NULL,
    context         TEXT    NOT NULL DEFAULT '' COLLATE NOCASE,
    location        TEXT    NOT NULL DEFAULT '' COLLATE NOCASE,
    CONSTRAINT uq_meter_values_sample
        UNIQUE (charge_point_id, evse_number, sampled_at, measurand, phase, location, context)
);
-- `WHERE true` keeps the upsert clause from being read as a join constraint.
INSERT INTO meter_values_new (id, transaction_id, charge_point_id, evse_number, sampled_at,
    measurand, phase, unit, value, context, location)
SELECT id, transaction_id, charge_point_id, evse_number, sampled_at, measurand,
    COALESCE(phase, ''), unit, value, COALESCE(context, ''), COALESCE(location, '')
FROM meter_values WHERE true ORDER BY id
ON CONFLICT DO NOTHING;
DROP TABLE meter_values;
ALTER TABLE meter_values_new RENAME TO meter_values;
CREATE INDEX ix_meter_values_transaction ON meter_values (transaction_id, sampled_at);
CREATE INDEX ix_meter_values_charge_point ON meter_values (charge_point_id, sampled_at);
