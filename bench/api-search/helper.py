#!/usr/bin/env python3
"""Helpers for bench/api-search/run: checking the queries, the second page's cursor, the
EXPLAIN of the search's SQL, and the side-by-side report.

Standard library only; what it shares with the other benchmarks is in bench/lib/benchlib.py.
Subcommands (besides the shared ports, probe and wrk-result):

  check BASE QUERIES           GET each query of the file (one path a line) from BASE; fail
                               unless every one answers 200 with a page of locations; print
                               how many each found
  cursor URL                   print the next_cursor of the page at URL (fail when none)
  explain LAT LON RADIUS_M MIN_POWER_W BBOX
                               print EXPLAIN statements of the SQL Locations::search runs for a
                               search around the point with the filters, and for the box
  db-size DB                   print the SQL that sizes the tables of database DB
  report RUNS META OUT         print the tables and write OUT (JSON) from the runs file
"""

import json
import math
import os
import sys
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from benchlib import dispatch, fail, fmt, ratio, write_report  # noqa: E402

# services/core/src/storage/locations.rs: METRES_PER_DEGREE.
METRES_PER_DEGREE = 6_371_008.8 * math.pi / 180.0


def get_json(url):
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, err.read()[:300]
    except (OSError, ValueError) as err:
        fail(f"GET {url}: {err}")


def cmd_check(base, queries_path):
    paths = [line.strip() for line in open(queries_path, encoding="utf-8") if line.strip()]
    for path in paths:
        status, body = get_json(base + path)
        if status != 200 or not isinstance(body, dict) or "items" not in body:
            fail(f"{path} answered {status}: {body!r}; the benchmark would measure errors")
        more = "more pages" if body.get("next_cursor") else "last page"
        print(f"      {len(body['items']):>3} locations, {more:<10}  {path}")


def cmd_cursor(url):
    status, body = get_json(url)
    cursor = body.get("next_cursor") if status == 200 and isinstance(body, dict) else None
    if not cursor:
        fail(f"{url} answered {status} without a next_cursor: {body!r}")
    print(cursor)


def d(value):
    """A DOUBLE literal (sqlx binds f64 as DOUBLE; a plain 40.4 would be DECIMAL)."""
    return f"{value:.17e}"


def cmd_explain(lat, lon, radius_m, min_power_w, bbox):
    """The statements Locations::search builds (services/core/src/storage/locations.rs), with
    the values bound, so that EXPLAIN shows the plan the server's queries get."""
    lat, lon, radius_m, min_power_w = float(lat), float(lon), float(radius_m), int(min_power_w)
    scale = math.cos(math.radians(lat)) ** 2
    dlat = radius_m / METRES_PER_DEGREE
    dlon = dlat / max(math.cos(math.radians(lat)), 1e-6)
    radius_degrees = radius_m / METRES_PER_DEGREE
    near = (
        f"SELECT * FROM (SELECT l.*, ((l.latitude - {d(lat)}) * (l.latitude - {d(lat)}) + "
        f"(l.longitude - {d(lon)}) * (l.longitude - {d(lon)}) * {d(scale)}) AS sort_key "
        f"FROM locations l WHERE 1 = 1 AND l.latitude BETWEEN {d(lat - dlat)} AND {d(lat + dlat)} "
        f"AND l.longitude BETWEEN {d(lon - dlon)} AND {d(lon + dlon)} "
        "AND EXISTS (SELECT 1 FROM charge_points cp JOIN evses e ON e.charge_point_id = cp.id "
        "JOIN connectors c ON c.evse_id = e.id WHERE cp.location_id = l.id "
        f"AND cp.registration_status = 'Accepted' AND c.max_power_w >= {min_power_w} "
        "AND e.status = 'Available')) AS found "
        f"WHERE 1 = 1 AND sort_key <= {d(radius_degrees * radius_degrees)} "
        "ORDER BY sort_key, id LIMIT 21"
    )
    min_lon, min_lat, max_lon, max_lat = (float(v) for v in bbox.split(","))
    box = (
        "SELECT * FROM (SELECT l.*, l.latitude * 0 AS sort_key FROM locations l WHERE 1 = 1 "
        f"AND l.latitude BETWEEN {d(min_lat)} AND {d(max_lat)} "
        f"AND l.longitude BETWEEN {d(min_lon)} AND {d(max_lon)}) AS found "
        "WHERE 1 = 1 ORDER BY id LIMIT 51"
    )
    print(f"SELECT 'near {lat},{lon} within {radius_m:.0f} m, available, >= {min_power_w} W' AS search;")
    print(f"EXPLAIN {near};")
    print(f"SELECT 'bbox {bbox}' AS search;")
    print(f"EXPLAIN {box};")


def cmd_db_size(database):
    print(
        "SELECT table_name AS `table`, table_rows AS `rows (estimate)`, "
        "ROUND(data_length / 1048576, 2) AS `data MB`, "
        "ROUND(index_length / 1048576, 2) AS `index MB` "
        f"FROM information_schema.tables WHERE table_schema = '{database}' "
        "AND table_name IN ('locations', 'charge_points', 'evses', 'connectors') "
        "ORDER BY table_name;"
        "SELECT ROUND(SUM(data_length + index_length) / 1048576, 2) AS `database MB` "
        f"FROM information_schema.tables WHERE table_schema = '{database}';"
    )


# ---------------------------------------------------------------------------- report

ROWS = [
    ("req/s", "rps", "{:,.0f}"),
    ("p50 latency (ms)", "p50_ms", "{:.2f}"),
    ("p99 latency (ms)", "p99_ms", "{:.2f}"),
    ("API CPU ms / req", "api_cpu_ms", "{:.3f}"),
    ("proxy CPU ms / req", "proxy_cpu_ms", "{:.3f}"),
    ("MariaDB CPU ms / req", "db_cpu_ms", "{:.3f}"),
    ("socket errors", "socket_errors", "{:,d}"),
    ("non-2xx responses", "non_2xx", "{:,d}"),
]


def cmd_report(runs_path, meta_path, out_path):
    meta = json.load(open(meta_path, encoding="utf-8"))
    runs = [json.loads(line) for line in open(runs_path, encoding="utf-8") if line.strip()]
    params, host = meta["params"], meta["host"]
    print()
    print("=" * 74)
    print(f"Location search — {params['duration_s']} s per run, {params['warmup_s']} s warm-up, "
          f"{host['cpus']} CPUs shared by the API, the proxy, MariaDB and wrk")
    print(f"fleet: {params['fleet']} | load average before: {host['load_before']}")
    print(f"{host['voltfleet_version']} (serve api) | {host['proxy_version']} (threads = 1) | "
          f"{host['wrk']}")
    print("=" * 74)
    scenarios = []
    for connections in params["connections"]:
        entry = {"connections": connections}
        for target in ("direct", "proxy"):
            found = [r for r in runs if r["connections"] == connections and r["target"] == target]
            entry[target] = found[-1]["result"] if found else {"failure": "not run"}
        d, p = entry["direct"], entry["proxy"]
        if "failure" not in d and "failure" not in p:
            entry["ratio"] = {key: ratio(p.get(key), d.get(key)) for _, key, _ in ROWS[:3]}
        scenarios.append(entry)
        print()
        print(f"{connections} connections: wrk -t 1 -c {connections} -d {params['duration_s']}s, "
              f"the {params['queries']} queries in turn")
        print("    " + "-" * 70)
        print(f"    {'':<24}{'direct to the API':>19}{'through the proxy':>19}{'ratio p/d':>10}")
        print("    " + "-" * 70)
        for label, key, template in ROWS:
            dv, pv = d.get(key), p.get(key)
            r = ratio(pv, dv) if key in ("rps", "p50_ms", "p99_ms") else None
            print(f"    {label:<24}{fmt(template, dv):>19}{fmt(template, pv):>19}"
                  f"{fmt('{:.2f}', r):>10}")
        print("    " + "-" * 70)
        for who, run in (("direct", d), ("proxy", p)):
            if "failure" in run:
                print(f"    {who} FAILED: {run['failure']}")
    write_report(out_path, meta, scenarios)


def main():
    dispatch({
        "check": lambda rest: cmd_check(rest[0], rest[1]),
        "cursor": lambda rest: cmd_cursor(rest[0]),
        "explain": lambda rest: cmd_explain(*rest[:5]),
        "db-size": lambda rest: cmd_db_size(rest[0]),
        "report": lambda rest: cmd_report(rest[0], rest[1], rest[2]),
    }, __doc__)


if __name__ == "__main__":
    main()
