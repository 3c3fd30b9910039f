-- The charging domain's first schema: sites, chargers with their EVSEs and connectors, ID
-- tokens, transactions with meter values, Back Office operators, API keys and the audit log.
--
-- Kept in step with ../sqlite/0001_charging_domain.sql: same tables, columns, keys and checks.
-- Times are UTC in DATETIME(3) (sessions run with time_zone '+00:00'); energy is Wh in BIGINT.
-- Text compares case-insensitively (utf8mb4_unicode_ci here, NOCASE on SQLite), so unique keys
-- such as a charger identity or an operator email cannot differ only in letter case. Checks
-- spell out the allowed values of the text enums; MariaDB and MySQL 8.0.16+ enforce them.

CREATE TABLE locations (
    id          BIGINT       NOT NULL AUTO_INCREMENT,
    name        VARCHAR(255) NOT NULL,
    address     VARCHAR(255) NOT NULL,
    city        VARCHAR(100) NOT NULL,
    postal_code VARCHAR(20)  NOT NULL,
    country     CHAR(3)      NOT NULL,
    latitude    DOUBLE       NOT NULL,
    longitude   DOUBLE       NOT NULL,
    -- IANA name such as Europe/Madrid
    time_zone   VARCHAR(64)  NOT NULL,
    created_at  DATETIME(3)  NOT NULL,
    updated_at  DATETIME(3)  NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_locations_name (name),
    CONSTRAINT ck_locations_latitude CHECK (latitude BETWEEN -90 AND 90),
    CONSTRAINT ck_locations_longitude CHECK (longitude BETWEEN -180 AND 180)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE charge_points (
    id                  BIGINT       NOT NULL AUTO_INCREMENT,
    -- the OCPP chargePointId the charger connects with
    identity            VARCHAR(48)  NOT NULL,
    -- unset until the charger is placed at a site
    location_id         BIGINT       NULL,
    -- argon2id PHC string for OCPP Basic auth; unset when the charger authenticates otherwise
    ocpp_password_hash  VARCHAR(255) NULL,
    registration_status VARCHAR(16)  NOT NULL,
    -- reported by the charger in BootNotification
    vendor              VARCHAR(50)  NULL,
    model               VARCHAR(50)  NULL,
    serial_number       VARCHAR(50)  NULL,
    firmware_version    VARCHAR(50)  NULL,
    ocpp_version        VARCHAR(16)  NULL,
    last_seen_at        DATETIME(3)  NULL,
    created_at          DATETIME(3)  NOT NULL,
    updated_at          DATETIME(3)  NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_charge_points_identity (identity),
    KEY ix_charge_points_location (location_id),
    CONSTRAINT fk_charge_points_location FOREIGN KEY (location_id) REFERENCES locations (id),
    CONSTRAINT ck_charge_points_registration_status
        CHECK (registration_status IN ('Accepted', 'Pending', 'Rejected'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- OCPP 1.6 connectorId / OCPP 2.0.1 evseId: one place a vehicle charges at a time.
CREATE TABLE evses (
    id                BIGINT      NOT NULL AUTO_INCREMENT,
    charge_point_id   BIGINT      NOT NULL,
    evse_number       INT         NOT NULL,
    -- the last status the charger reported, as it spelled it (Available, Charging, …)
    status            VARCHAR(32) NOT NULL,
    status_updated_at DATETIME(3) NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_evses_number (charge_point_id, evse_number),
    CONSTRAINT fk_evses_charge_point FOREIGN KEY (charge_point_id)
        REFERENCES charge_points (id) ON DELETE CASCADE,
    CONSTRAINT ck_evses_number CHECK (evse_number >= 1)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

CREATE TABLE connectors (
    id               BIGINT      NOT NULL AUTO_INCREMENT,
    evse_id          BIGINT      NOT NULL,
    connector_number INT         NOT NULL,
    -- OCPI ConnectorType such as IEC_62196_T2
    standard         VARCHAR(32) NOT NULL,
    format           VARCHAR(8)  NOT NULL,
    power_type       VARCHAR(16) NOT NULL,
    max_voltage      INT         NOT NULL,
    max_amperage     INT         NOT NULL,
    max_power_w      INT         NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_connectors_number (evse_id, connector_number),
    CONSTRAINT fk_connectors_evse FOREIGN KEY (evse_id) REFERENCES evses (id) ON DELETE CASCADE,
    CONSTRAINT ck_connectors_number CHECK (connector_number >= 1),
    CONSTRAINT ck_connectors_format CHECK (format IN ('SOCKET', 'CABLE')),
    CONSTRAINT ck_connectors_power_type CHECK (power_type IN ('AC_1_PHASE', 'AC_3_PHASE', 'DC'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- RFID cards and other tokens drivers start charging with (OCPP idTag / IdToken).
CREATE TABLE id_tokens (
    id          BIGINT      NOT NULL AUTO_INCREMENT,
    -- OCPP 1.6 allows 20 characters, 2.0.1 allows 36; both compare case-insensitively
    token       VARCHAR(36) NOT NULL,
    token_type  VARCHAR(20) NOT NULL,
    status      VARCHAR(16) NOT NULL,
    expires_at  DATETIME(3) NULL,
    group_token VARCHAR(36) NULL,
    created_at  DATETIME(3) NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_id_tokens_token (token),
    CONSTRAINT ck_id_tokens_status CHECK (status IN ('Accepted', 'Blocked', 'Expired', 'Invalid'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- The row id is the OCPP 1.6 transactionId.
CREATE TABLE transactions (
    id              BIGINT      NOT NULL AUTO_INCREMENT,
    charge_point_id BIGINT      NOT NULL,
    evse_number     INT         NOT NULL,
    -- as presented, not a foreign key: unknown tokens start transactions too (and are refused)
    id_token        VARCHAR(36) NOT NULL,
    meter_start_wh  BIGINT      NOT NULL,
    meter_stop_wh   BIGINT      NULL,
    started_at      DATETIME(3) NOT NULL,
    stopped_at      DATETIME(3) NULL,
    stop_reason     VARCHAR(32) NULL,
    created_at      DATETIME(3) NOT NULL,
    PRIMARY KEY (id),
    -- a charger that resends StartTransaction gets the same transaction back
    UNIQUE KEY uq_transactions_start (charge_point_id, evse_number, started_at),
    KEY ix_transactions_id_token (id_token, started_at),
    KEY ix_transactions_started_at (started_at),
    CONSTRAINT fk_transactions_charge_point FOREIGN KEY (charge_point_id)
        REFERENCES charge_points (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- One sampled value (OCPP SampledValue); measurand, unit, context and location as the charger
-- spelled them.
CREATE TABLE meter_values (
    id              BIGINT      NOT NULL AUTO_INCREMENT,
    transaction_id  BIGINT      NULL,
    charge_point_id BIGINT      NOT NULL,
    -- 0 is the charger's main meter
    evse_number     INT         NOT NULL,
    sampled_at      DATETIME(3) NOT NULL,
    measurand       VARCHAR(64) NOT NULL,
    phase           VARCHAR(8)  NULL,
    unit            VARCHAR(16) NOT NULL,
    value           DOUBLE      NOT NULL,
    context         VARCHAR(32) NULL,
    location        VARCHAR(16) NULL,
    PRIMARY KEY (id),
    KEY ix_meter_values_transaction (transaction_id, sampled_at),
    KEY ix_meter_values_charge_point (charge_point_id, sampled_at),
    CONSTRAINT fk_meter_values_transaction FOREIGN KEY (transaction_id)
        REFERENCES transactions (id) ON DELETE CASCADE,
    CONSTRAINT fk_meter_values_charge_point FOREIGN KEY (charge_point_id)
        REFERENCES charge_points (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- People who sign in to the Back Office.
CREATE TABLE operators (
    id            BIGINT       NOT NULL AUTO_INCREMENT,
    -- stored lower-case
    email         VARCHAR(255) NOT NULL,
    display_name  VARCHAR(255) NOT NULL,
    -- argon2id PHC string
    password_hash VARCHAR(255) NOT NULL,
    role          VARCHAR(16)  NOT NULL,
    disabled      BOOLEAN      NOT NULL DEFAULT FALSE,
    created_at    DATETIME(3)  NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_operators_email (email),
    CONSTRAINT ck_operators_role CHECK (role IN ('admin', 'operator', 'viewer'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Keys for the public API. Only the public prefix and a SHA-256 of the whole key are kept.
CREATE TABLE api_keys (
    id           BIGINT        NOT NULL AUTO_INCREMENT,
    name         VARCHAR(100)  NOT NULL,
    prefix       VARCHAR(16)   NOT NULL,
    key_hash     CHAR(64)      NOT NULL,
    -- space-separated
    scopes       VARCHAR(1024) NOT NULL,
    -- who created it; unset for keys made by the system (such as `voltfleet up`)
    operator_id  BIGINT        NULL,
    created_at   DATETIME(3)   NOT NULL,
    last_used_at DATETIME(3)   NULL,
    revoked_at   DATETIME(3)   NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_api_keys_prefix (prefix),
    KEY ix_api_keys_operator (operator_id),
    CONSTRAINT fk_api_keys_operator FOREIGN KEY (operator_id) REFERENCES operators (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Who did what to what, and how it ended. Append-only.
CREATE TABLE audit_log (
    id          BIGINT       NOT NULL AUTO_INCREMENT,
    occurred_at DATETIME(3)  NOT NULL,
    -- such as operator:admin@example.com, api_key:1a2b3c4d5e6f, charger:CP-1, system
    actor       VARCHAR(255) NOT NULL,
    action      VARCHAR(64)  NOT NULL,
    target      VARCHAR(255) NOT NULL,
    -- a JSON document
    details     TEXT         NOT NULL,
    outcome     VARCHAR(16)  NOT NULL,
    PRIMARY KEY (id),
    KEY ix_audit_log_occurred_at (occurred_at),
    CONSTRAINT ck_audit_log_outcome CHECK (outcome IN ('success', 'denied', 'failure'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
