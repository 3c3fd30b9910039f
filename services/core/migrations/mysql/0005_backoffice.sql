-- What the Back Office needs: operators' signed-in sessions, and the recent OCPP messages of
-- each charger.
--
-- Operators' signed-in sessions in the Back Office. The browser holds a random session id in a
-- cookie; only its SHA-256 is stored, so a copy of the table signs nobody in. A session ends
-- when it is idle too long (last_seen_at), at its absolute expiry, or when it is revoked
-- (logout, a new login never reuses an id).
--
-- Kept in step with ../sqlite/0005_backoffice.sql: same columns, keys and checks.

CREATE TABLE operator_sessions (
    id           BIGINT       NOT NULL AUTO_INCREMENT,
    operator_id  BIGINT       NOT NULL,
    -- lower-case hex SHA-256 of the session id the cookie carries
    token_hash   CHAR(64)     NOT NULL,
    -- the token every form and unsafe request of this session must carry (CSRF)
    csrf_token   CHAR(64)     NOT NULL,
    -- the client address and browser at sign-in, for the operator's own review
    client_ip    VARCHAR(45)  NULL,
    user_agent   VARCHAR(255) NULL,
    created_at   DATETIME(3)  NOT NULL,
    -- the last request seen, for the idle timeout (written at most once a minute)
    last_seen_at DATETIME(3)  NOT NULL,
    -- the absolute end, whatever the activity
    expires_at   DATETIME(3)  NOT NULL,
    revoked_at   DATETIME(3)  NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_operator_sessions_token_hash (token_hash),
    KEY ix_operator_sessions_operator (operator_id),
    CONSTRAINT fk_operator_sessions_operator FOREIGN KEY (operator_id) REFERENCES operators (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- The last messages each charger exchanged with the central system, for support: the OCPP
-- service appends them off the charger's path and trims each charger's to ocpp.message_log.
CREATE TABLE ocpp_messages (
    id              BIGINT       NOT NULL AUTO_INCREMENT,
    charge_point_id BIGINT       NOT NULL,
    -- 'in' from the charger, 'out' to it
    direction       VARCHAR(3)   NOT NULL,
    -- CALL, CALLRESULT, CALLERROR, or invalid for a text that is not OCPP-J
    message_type    VARCHAR(10)  NOT NULL,
    -- the OCPP action when known (a result's is its CALL's)
    action          VARCHAR(64)  NULL,
    -- the OCPP-J message id, cut to 64 characters
    message_id      VARCHAR(64)  NULL,
    -- the text as it went over the socket, cut to 4000 characters
    body            TEXT         NOT NULL,
    truncated       BOOLEAN      NOT NULL,
    at              DATETIME(3)  NOT NULL,
    PRIMARY KEY (id),
    KEY ix_ocpp_messages_charge_point (charge_point_id, id),
    CONSTRAINT fk_ocpp_messages_charge_point FOREIGN KEY (charge_point_id)
        REFERENCES charge_points (id) ON DELETE CASCADE,
    CONSTRAINT ck_ocpp_messages_direction CHECK (direction IN ('in', 'out'))
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
