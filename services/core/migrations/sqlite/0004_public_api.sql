-- What the public API shows and who owns what: opening hours and a tariff text on locations,
-- drivers' own ID tokens and API keys.
--
-- Kept in step with ../mysql/0004_public_api.sql: same columns, keys and checks; comments on
-- the columns are there.

ALTER TABLE locations ADD COLUMN opening_hours TEXT NULL;
ALTER TABLE locations ADD COLUMN tariff_text TEXT NULL CHECK (length(tariff_text) <= 255);
CREATE INDEX ix_locations_coordinates ON locations (latitude, longitude);

ALTER TABLE id_tokens ADD COLUMN driver_id INTEGER NULL REFERENCES drivers (id);
ALTER TABLE id_tokens ADD COLUMN label TEXT NULL CHECK (length(label) <= 100);
CREATE INDEX ix_id_tokens_driver ON id_tokens (driver_id);

ALTER TABLE api_keys ADD COLUMN driver_id INTEGER NULL REFERENCES drivers (id);
CREATE INDEX ix_api_keys_driver ON api_keys (driver_id);
