-- The search benchmark's fleet, made in SQL by MariaDB itself (its Sequence engine's
-- seq_1_to_N tables): @LOCATIONS@ locations over mainland Spain, 4 chargers each, 2 EVSEs per
-- charger, one connector per EVSE. Every value is derived from the row number, so two runs
-- seed the same fleet. Rendered by ./run (@LOCATIONS@); run after `voltfleet migrate`.

-- Where sites cluster: the eight largest cities.
CREATE TEMPORARY TABLE bench_cities (idx INT PRIMARY KEY, name VARCHAR(40), postal INT,
                                     lat DOUBLE, lon DOUBLE);
INSERT INTO bench_cities VALUES
    (0, 'Madrid', 28001, 40.4168, -3.7038), (1, 'Barcelona', 8001, 41.3870, 2.1700),
    (2, 'Valencia', 46001, 39.4699, -0.3763), (3, 'Sevilla', 41001, 37.3891, -5.9845),
    (4, 'Zaragoza', 50001, 41.6488, -0.8891), (5, 'Málaga', 29001, 36.7213, -4.4214),
    (6, 'Bilbao', 48001, 43.2630, -2.9350), (7, 'Murcia', 30001, 37.9922, -1.1307);

-- Three sites in five within ±0.15° of a city centre (about ±16 km), the others spread over
-- the box of mainland Spain (36.0–43.7 N, 9.3 W–3.3 E) by an additive recurrence of the
-- plastic number, which covers a square evenly without clumps.
INSERT INTO locations (name, address, city, postal_code, country, latitude, longitude,
                       time_zone, created_at, updated_at, opening_hours, tariff_text)
SELECT CONCAT('Bench site ', LPAD(s.seq, 5, '0')),
       CONCAT('Calle de la Prueba ', s.seq),
       IF(s.seq % 5 < 3, c.name, 'Rural'),
       LPAD(c.postal + s.seq % 90, 5, '0'),
       'ESP',
       IF(s.seq % 5 < 3,
          c.lat + ((s.seq * 0.6180339887) - FLOOR(s.seq * 0.6180339887) - 0.5) * 0.30,
          36.0 + 7.7 * ((s.seq * 0.7548776662) - FLOOR(s.seq * 0.7548776662))),
       IF(s.seq % 5 < 3,
          c.lon + ((s.seq * 0.4142135624) - FLOOR(s.seq * 0.4142135624) - 0.5) * 0.30,
          -9.3 + 12.6 * ((s.seq * 0.5698402910) - FLOOR(s.seq * 0.5698402910))),
       'Europe/Madrid', UTC_TIMESTAMP(3), UTC_TIMESTAMP(3),
       IF(s.seq % 3 = 0, '{"twentyfourseven":true}',
          '{"twentyfourseven":false,"regular_hours":[{"weekday":1,"period_begin":"08:00","period_end":"22:00"}]}'),
       CONCAT(ROUND(0.29 + (s.seq % 7) * 0.05, 2), ' EUR/kWh')
FROM seq_1_to_@LOCATIONS@ s JOIN bench_cities c ON c.idx = s.seq % 8;

INSERT INTO charge_points (identity, location_id, registration_status, security_profile,
                           created_at, updated_at)
SELECT CONCAT('BENCH-', LPAD(l.id, 5, '0'), '-', k.seq), l.id, 'Accepted', 0,
       UTC_TIMESTAMP(3), UTC_TIMESTAMP(3)
FROM locations l JOIN seq_1_to_4 k;

-- Four EVSEs in ten Available, the others charging, preparing, unavailable or faulted.
INSERT INTO evses (charge_point_id, evse_number, status, status_updated_at)
SELECT cp.id, e.seq,
       ELT(1 + (cp.id * 7 + e.seq * 3) % 10, 'Available', 'Available', 'Available', 'Available',
           'Charging', 'Charging', 'Charging', 'Preparing', 'Unavailable', 'Faulted'),
       UTC_TIMESTAMP(3)
FROM charge_points cp JOIN seq_1_to_2 e;

-- Per charger, by its id: three in five AC (Type 2 sockets of 7.4, 11 or 22 kW), one in five
-- DC 50 kW (CCS and CHAdeMO cables), one in five DC 150 or 350 kW (CCS cables).
INSERT INTO connectors (evse_id, connector_number, standard, format, power_type, max_voltage,
                        max_amperage, max_power_w)
SELECT e.id, 1,
       CASE WHEN cp.id % 5 < 3 THEN 'IEC_62196_T2'
            WHEN cp.id % 5 = 3 AND e.evse_number = 2 THEN 'CHADEMO'
            ELSE 'IEC_62196_T2_COMBO' END,
       IF(cp.id % 5 < 3, 'SOCKET', 'CABLE'),
       CASE WHEN cp.id % 5 >= 3 THEN 'DC' WHEN cp.id % 3 = 0 THEN 'AC_1_PHASE'
            ELSE 'AC_3_PHASE' END,
       CASE WHEN cp.id % 5 >= 3 THEN 920 WHEN cp.id % 3 = 0 THEN 230 ELSE 400 END,
       CASE WHEN cp.id % 5 = 3 THEN 125 WHEN cp.id % 5 = 4 THEN 500
            WHEN cp.id % 3 = 0 THEN 32 WHEN cp.id % 3 = 1 THEN 16 ELSE 32 END,
       CASE WHEN cp.id % 5 = 3 THEN 50000
            WHEN cp.id % 5 = 4 THEN IF(cp.id % 2 = 0, 150000, 350000)
            WHEN cp.id % 3 = 0 THEN 7400 WHEN cp.id % 3 = 1 THEN 11000 ELSE 22000 END
FROM evses e JOIN charge_points cp ON cp.id = e.charge_point_id;

DROP TEMPORARY TABLE bench_cities;
ANALYZE TABLE locations, charge_points, evses, connectors;
