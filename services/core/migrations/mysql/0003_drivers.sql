-- Drivers' accounts for the public API and website, and their sign-in sessions.
--
-- Kept in step with ../sqlite/0003_drivers.sql: same tables, columns, keys and checks.
-- Emails are stored lower-case and compared case-insensitively (utf8mb4_unicode_ci), so two
-- accounts cannot differ only in letter case.

CREATE TABLE drivers (
    id            BIGINT       NOT NULL AUTO_INCREMENT,
    -- stored lower-case
    email         VARCHAR(255) NOT NULL,
    name          VARCHAR(255) NOT NULL,
    -- argon2id PHC string
    password_hash VARCHAR(255) NOT NULL,
    created_at    DATETIME(3)  NOT NULL,
    updated_at    DATETIME(3)  NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_drivers_email (email)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- One row per refresh token. A login starts a chain; each refresh revokes its row, points
-- replaced_by at the new row and keeps the chain, so a rotated token presented again revokes
-- the whole chain. Only the SHA-256 of a refresh token is kept.
CREATE TABLE driver_sessions (
    id          BIGINT       NOT NULL AUTO_INCREMENT,
    driver_id   BIGINT       NOT NULL,
    -- random, shared by every session rotated from one login
    chain       CHAR(32)     NOT NULL,
    -- lower-case hex SHA-256 of the refresh token
    token_hash  CHAR(64)     NOT NULL,
    user_agent  VARCHAR(255) NULL,
    created_at  DATETIME(3)  NOT NULL,
    expires_at  DATETIME(3)  NOT NULL,
    revoked_at  DATETIME(3)  NULL,
    -- the session this one was rotated into
    replaced_by BIGINT       NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_driver_sessions_token_hash (token_hash),
    KEY ix_driver_sessions_driver (driver_id),
    KEY ix_driver_sessions_chain (chain),
    CONSTRAINT fk_driver_sessions_driver FOREIGN KEY (driver_id) REFERENCES drivers (id),
    CONSTRAINT fk_driver_sessions_replaced_by FOREIGN KEY (replaced_by) REFERENCES driver_sessions (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
