-- The proxy's security log in Athena: one row per security event (firewall match, and the
-- other kinds the proxy records), read from the gzipped JSON lines voltfleet-proxy uploads to
-- s3://<bucket>/<prefix>dt=YYYY-MM-DD/hour=HH/.
--
-- Before running it, replace both s3://YOUR-BUCKET/voltfleet-proxy/security/ below with the
-- bucket and prefix of [security_log.s3] (bucket, prefix; the prefix defaults to
-- "voltfleet-proxy/security/"), and 2024-01-01 with the first day the proxy shipped logs.
-- Partitions are projected from the path, so no MSCK REPAIR TABLE or crawler is needed: a new
-- hour is queryable as soon as its first file is uploaded. Filter on dt (and hour) to read
-- only the partitions a query needs.
--
-- The columns are the fields of voltfleet_proxy::security_log::SecurityEvent (a unit test
-- checks that the two match). event_time is RFC 3339 UTC with milliseconds: read it with
-- from_iso8601_timestamp(event_time).
--
-- Example queries:
--
--   -- The rules that matched most over the last day.
--   SELECT rule_id, kind, action, count(*) AS events
--   FROM voltfleet_security_log
--   WHERE dt >= date_format(current_date - interval '1' day, '%Y-%m-%d')
--     AND from_iso8601_timestamp(event_time) > current_timestamp - interval '1' day
--   GROUP BY rule_id, kind, action
--   ORDER BY events DESC
--   LIMIT 20;
--
--   -- The client addresses blocked most over the last day, with the routes they tried.
--   SELECT client_ip, count(*) AS blocked, array_agg(DISTINCT route) AS routes
--   FROM voltfleet_security_log
--   WHERE dt >= date_format(current_date - interval '1' day, '%Y-%m-%d')
--     AND action = 'block'
--   GROUP BY client_ip
--   ORDER BY blocked DESC
--   LIMIT 20;
--
--   -- Everything one request did, by the X-Request-Id the client was answered with.
--   SELECT * FROM voltfleet_security_log
--   WHERE dt = '2024-05-01' AND request_id = '3f0c6a3e-8f5e-4d58-9a43-8ad1c4c5b0e1';

CREATE EXTERNAL TABLE IF NOT EXISTS voltfleet_security_log (
  `event_time` string,
  `client_ip` string,
  `listener` string,
  `route` string,
  `host` string,
  `method` string,
  `path` string,
  `rule_id` int,
  `kind` string,
  `action` string,
  `location` string,
  `name` string,
  `excerpt` string,
  `request_id` string
)
PARTITIONED BY (
  `dt` string,
  `hour` string
)
ROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'
WITH SERDEPROPERTIES ('ignore.malformed.json' = 'true')
STORED AS INPUTFORMAT 'org.apache.hadoop.mapred.TextInputFormat'
OUTPUTFORMAT 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat'
LOCATION 's3://YOUR-BUCKET/voltfleet-proxy/security/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '2024-01-01,NOW',
  'projection.dt.interval' = '1',
  'projection.dt.interval.unit' = 'DAYS',
  'projection.hour.type' = 'integer',
  'projection.hour.range' = '0,23',
  'projection.hour.digits' = '2',
  'storage.location.template' = 's3://YOUR-BUCKET/voltfleet-proxy/security/dt=${dt}/hour=${hour}/'
);
