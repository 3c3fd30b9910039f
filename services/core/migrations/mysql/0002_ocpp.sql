-- What the OCPP 1.6 central system keeps: the rest of BootNotification, the charger's security
-- profile and connector 0 status, firmware and diagnostics progress, a history of status
-- reports, the mirrored configuration keys, reservations, charging profiles and the local
-- authorization list; idempotent meter values.
--
-- Kept in step with ../sqlite/0002_ocpp.sql: same tables, columns, keys and checks. Text that
-- OCPP calls CiString (configuration keys, idTags, info texts) compares case-insensitively, as
-- all text here does (utf8mb4_unicode_ci); SQLite spells that COLLATE NOCASE.

ALTER TABLE charge_points
    -- 0 = no authentication, 1 = HTTP Basic auth, 2 = Basic auth over TLS,
    -- 3 = TLS client certificate (the OCPP security whitepaper's profiles)
    ADD COLUMN security_profile         SMALLINT    NOT NULL DEFAULT 1,
    -- the rest of BootNotification
    ADD COLUMN charge_box_serial_number VARCHAR(25) NULL,
    ADD COLUMN iccid                    VARCHAR(20) NULL,
    ADD COLUMN imsi                     VARCHAR(20) NULL,
    ADD COLUMN meter_type               VARCHAR(25) NULL,
    ADD COLUMN meter_serial_number      VARCHAR(25) NULL,
    -- connector 0 (the charger as a whole): the last StatusNotification, as spelled on the
    -- wire; status_updated_at is the charger's timestamp (our receipt time when it sent none)
    ADD COLUMN status                   VARCHAR(32) NULL,
    ADD COLUMN status_error_code        VARCHAR(32) NULL,
    ADD COLUMN status_updated_at        DATETIME(3) NULL,
    -- FirmwareStatusNotification and DiagnosticsStatusNotification
    ADD COLUMN firmware_status          VARCHAR(32) NULL,
    ADD COLUMN firmware_status_at       DATETIME(3) NULL,
    ADD COLUMN diagnostics_status       VARCHAR(32) NULL,
    ADD COLUMN diagnostics_status_at    DATETIME(3) NULL,
    -- the listVersion of the last SendLocalList the charger accepted
    ADD COLUMN local_list_version       INT         NULL,
    ADD CONSTRAINT ck_charge_points_security_profile CHECK (security_profile BETWEEN 0 AND 3);

ALTER TABLE evses
    ADD COLUMN error_code  VARCHAR(32) NULL,
    ADD COLUMN status_info VARCHAR(50) NULL;

-- Every StatusNotification, including those that came too late to be the current status.
CREATE TABLE connector_status_history (
    id                BIGINT       NOT NULL AUTO_INCREMENT,
    charge_point_id   BIGINT       NOT NULL,
    -- 0 is the charger as a whole
    connector_id      INT          NOT NULL,
    status            VARCHAR(32)  NOT NULL,
    error_code        VARCHAR(32)  NOT NULL,
    info              VARCHAR(50)  NULL,
    vendor_id         VARCHAR(255) NULL,
    vendor_error_code VARCHAR(50)  NULL,
    -- the charger's timestamp; unset when it sent none
    reported_at       DATETIME(3)  NULL,
    received_at       DATETIME(3)  NOT NULL,
    PRIMARY KEY (id),
    -- a resent report adds no row (reports without a timestamp are never taken for resends)
    UNIQUE KEY uq_connector_status_history_report
        (charge_point_id, connector_id, reported_at, status, error_code),
    KEY ix_connector_status_history_received (charge_point_id, connector_id, received_at),
    CONSTRAINT fk_connector_status_history_charge_point FOREIGN KEY (charge_point_id)
        REFERENCES charge_points (id) ON DELETE CASCADE,
    CONSTRAINT ck_connector_status_history_connector CHECK (connector_id >= 0)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- The charger's configuration keys as its last GetConfiguration / ChangeConfiguration told.
CREATE TABLE charge_point_configuration (
    charge_point_id BIGINT       NOT NULL,
    config_key      VARCHAR(50)  NOT NULL,
    -- unset when the charger reports the key without a value
    value           VARCHAR(500) NULL,
    readonly        BOOLEAN      NOT NULL,
    updated_at      DATETIME(3)  NOT NULL,
    PRIMARY KEY (charge_point_id, config_key),
    CONSTRAINT fk_charge_point_configuration_charge_point FOREIGN KEY (charge_point_id)
        REFERENCES charge_points (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- ReserveNow requests; the row id is the OCPP reservationId.
CREATE TABLE reservations (
    id              BIGINT      NOT NULL AUTO_INCREMENT,
    charge_point_id BIGINT      NOT NULL,
    -- 0 reserves any connector of the charger
    connector_id    INT         NOT NULL,
    id_tag          VARCHAR(20) NOT NULL,
    parent_id_tag   VARCHAR(20) NULL,
    expires_at      DATETIME(3) NOT NULL,
    -- Requested until the charger answers; Used once a transaction started on it
    status          VARCHAR(16) NOT NULL,
    transaction_id  BIGINT      NULL,
    created_at      DATETIME(3) NOT NULL,
    updated_at      DATETIME(3) NOT NULL,
    PRIMARY KEY (id),
    KEY ix_reservations_charge_point (charge_point_id, status, expires_at),
    KEY ix_reservations_expiry (status, expires_at),
    KEY ix_reservations_transaction (transaction_id),
    CONSTRAINT fk_reservations_charge_point FOREIGN KEY (charge_point_id)
        REFERENCES charge_points (id),
    CONSTRAINT fk_reservations_transaction FOREIGN KEY (transaction_id)
        REFERENCES transactions (id) ON DELETE SET NULL,
    CONSTRAINT ck_reservations_connector CHECK (connector_id >= 0),
    CONSTRAINT ck_reservations_status CHECK (status IN ('Requested', 'Accepted', 'Faulted',
        'Occupied', 'Rejected', 'Unavailable', 'Cancelled', 'Used', 'Expired'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- The charging profiles installed on each charger (SetChargingProfile it accepted).
CREATE TABLE charging_profiles (
    id                  BIGINT      NOT NULL AUTO_INCREMENT,
    charge_point_id     BIGINT      NOT NULL,
    -- 0 is the charger as a whole
    connector_id        INT         NOT NULL,
    -- the OCPP chargingProfileId
    charging_profile_id INT         NOT NULL,
    stack_level         INT         NOT NULL,
    purpose             VARCHAR(32) NOT NULL,
    kind                VARCHAR(16) NOT NULL,
    recurrency          VARCHAR(8)  NULL,
    valid_from          DATETIME(3) NULL,
    valid_to            DATETIME(3) NULL,
    -- a TxProfile's transaction
    transaction_id      BIGINT      NULL,
    -- the chargingSchedule, a JSON document as sent
    schedule            TEXT        NOT NULL,
    created_at          DATETIME(3) NOT NULL,
    PRIMARY KEY (id),
    -- OCPP 1.6 replaces a profile with the same id, or with the same connector, stack level
    -- and purpose; so neither can occur twice
    UNIQUE KEY uq_charging_profiles_profile_id (charge_point_id, charging_profile_id),
    UNIQUE KEY uq_charging_profiles_stack (charge_point_id, connector_id, purpose, stack_level),
    CONSTRAINT fk_charging_profiles_charge_point FOREIGN KEY (charge_point_id)
        REFERENCES charge_points (id) ON DELETE CASCADE,
    CONSTRAINT ck_charging_profiles_connector CHECK (connector_id >= 0),
    CONSTRAINT ck_charging_profiles_stack_level CHECK (stack_level >= 0),
    CONSTRAINT ck_charging_profiles_purpose
        CHECK (purpose IN ('ChargePointMaxProfile', 'TxDefaultProfile', 'TxProfile')),
    CONSTRAINT ck_charging_profiles_kind CHECK (kind IN ('Absolute', 'Recurring', 'Relative')),
    CONSTRAINT ck_charging_profiles_recurrency CHECK (recurrency IN ('Daily', 'Weekly'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Each charger's local authorization list as the last accepted SendLocalList left it; its
-- version is charge_points.local_list_version.
CREATE TABLE local_list_entries (
    charge_point_id BIGINT      NOT NULL,
    id_tag          VARCHAR(20) NOT NULL,
    -- the idTagInfo's status, as spelled on the wire
    status          VARCHAR(16) NULL,
    expiry_date     DATETIME(3) NULL,
    parent_id_tag   VARCHAR(20) NULL,
    PRIMARY KEY (charge_point_id, id_tag),
    CONSTRAINT fk_local_list_entries_charge_point FOREIGN KEY (charge_point_id)
        REFERENCES charge_points (id) ON DELETE CASCADE
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

ALTER TABLE transactions
    -- the reservationId the charger started with, as sent (not a foreign key: a charger may
    -- name a reservation we do not know)
    ADD COLUMN reservation_id    BIGINT      NULL,
    -- the idTag StopTransaction named, when it did
    ADD COLUMN stop_id_token     VARCHAR(36) NULL,
    -- the idTagInfo status we answered StartTransaction with
    ADD COLUMN start_auth_status VARCHAR(16) NULL;

-- Resent MeterValues must not store a sample twice. A unique key cannot see NULLs collide, so
-- phase, location and context become NOT NULL with '' for "not given" (the storage layer reads
-- '' back as none). Samples that collide under the new key (resends stored before it existed)
-- keep their first row.
UPDATE meter_values
SET phase = COALESCE(phase, ''), location = COALESCE(location, ''), context = COALESCE(context, '')
WHERE phase IS NULL OR location IS NULL OR context IS NULL;

DELETE newer FROM meter_values AS newer
JOIN meter_values AS older
    ON older.charge_point_id = newer.charge_point_id
    AND older.evse_number = newer.evse_number
    AND older.sampled_at = newer.sampled_at
    AND older.measurand = newer.measurand
    AND older.phase = newer.phase
    AND older.location = newer.location
    AND older.context = newer.context
    AND older.id < newer.id;

ALTER TABLE meter_values
    MODIFY COLUMN phase    VARCHAR(8)  NOT NULL DEFAULT '',
    MODIFY COLUMN context  VARCHAR(32) NOT NULL DEFAULT '',
    MODIFY COLUMN location VARCHAR(16) NOT NULL DEFAULT '',
    ADD UNIQUE KEY uq_meter_values_sample
        (charge_point_id, evse_number, sampled_at, measurand, phase, location, context);
