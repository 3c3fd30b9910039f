-- What the public API shows and who owns what: opening hours and a tariff text on locations
-- (searched by coordinates, hence the index), drivers' own ID tokens (RFID cards and the token
-- the app starts charging with) and drivers' own API keys.
--
-- Kept in step with ../sqlite/0004_public_api.sql: same columns, keys and checks.

ALTER TABLE locations
    -- OCPI Hours as JSON: {"twentyfourseven": true} or {"twentyfourseven": false,
    -- "regular_hours": [{"weekday": 1, "period_begin": "08:00", "period_end": "20:00"}]};
    -- unset when unknown
    ADD COLUMN opening_hours TEXT         NULL,
    -- free text shown to drivers, such as "0.39 EUR/kWh"; unset when unknown
    ADD COLUMN tariff_text   VARCHAR(255) NULL,
    ADD KEY ix_locations_coordinates (latitude, longitude);

ALTER TABLE id_tokens
    -- the driver the token belongs to; unset for tokens an operator manages (fleet cards,
    -- roaming partners' tokens)
    ADD COLUMN driver_id BIGINT       NULL,
    -- what the driver calls it
    ADD COLUMN label     VARCHAR(100) NULL,
    ADD KEY ix_id_tokens_driver (driver_id),
    ADD CONSTRAINT fk_id_tokens_driver FOREIGN KEY (driver_id) REFERENCES drivers (id);

ALTER TABLE api_keys
    -- the driver whose data the key reaches; unset for operators' keys (partners, apps)
    ADD COLUMN driver_id BIGINT NULL,
    ADD KEY ix_api_keys_driver (driver_id),
    ADD CONSTRAINT fk_api_keys_driver FOREIGN KEY (driver_id) REFERENCES drivers (id);
