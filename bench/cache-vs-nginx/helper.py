#!/usr/bin/env python3
"""Helpers for bench/cache-vs-nginx/run: checks that a proxy answers from its cache, warming a
working set of keys, the origin's request counter, voltfleet-proxy's cache tiers, and the
side-by-side report (tables on stdout, JSON in results/latest.json).

Standard library only; what it shares with bench/proxy-vs-nginx is in bench/lib/benchlib.py.
Subcommands:

  ports N                      print N free TCP ports on 127.0.0.1
  probe URL [--bytes N] [--pid PID]
                               GET URL until it answers 200 with N body bytes; give up if PID exits
  wrk-result FILE              turn wrk's stdout (with report.lua's JSON line) into a result
  expect URL STATUS [--bytes N]
                               one GET must answer 200 with X-Cache-Status: STATUS (and N bytes)
  warm PREFIX N [--bytes B]    GET PREFIX1 .. PREFIXN once each (8 connections); all must be 200
  sample PREFIX N K STATUS     K random keys of PREFIX1 .. PREFIXN must answer X-Cache-Status: STATUS
  origin-requests URL          the origin's request counter (NGINX stub_status at URL),
                               this request included
  tiers METRICS_URL ZONE       voltfleet-proxy's objects per tier in ZONE: "MEMORY DISK"
  report RUNS META OUT         print the tables and write OUT (JSON) from the runs file
"""

import http.client
import json
import os
import random
import re
import sys
import threading

sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from benchlib import (connect, dispatch, fail, fmt, option, paired_scenarios, ratio,  # noqa: E402
                      split_url, write_report)

CACHE_STATUS = "X-Cache-Status"


# ---------------------------------------------------------------------------- cache checks


def get(conn, path):
    # Host is the URL's host and port, as wrk sends it: it is part of both caches' keys.
    conn.request("GET", path)
    response = conn.getresponse()
    body = response.read()
    return response, body


def describe(response, body):
    status = response.getheader(CACHE_STATUS)
    shown = "absent" if status is None else repr(status)
    return f"status {response.status}, {CACHE_STATUS} {shown}, {len(body)} body bytes"


def cmd_expect(args):
    url, want = args[0], args[1]
    want_bytes = option(args, "--bytes", None, int)
    scheme, host, port, path = split_url(url)
    conn = connect(scheme, host, port, timeout=10)
    try:
        response, body = get(conn, path)
    except (OSError, http.client.HTTPException) as err:
        fail(f"{url}: {type(err).__name__}: {err}")
    finally:
        conn.close()
    got = response.getheader(CACHE_STATUS)
    if response.status != 200 or got != want or (want_bytes is not None and len(body) != want_bytes):
        fail(f"{url}: expected 200 with {CACHE_STATUS}: {want}"
             f"{'' if want_bytes is None else f' and {want_bytes} body bytes'}; got {describe(response, body)}")


def cmd_warm(args):
    prefix, count = args[0], int(args[1])
    want_bytes = option(args, "--bytes", None, int)
    scheme, host, port, path = split_url(prefix)
    problems = []
    next_key = iter(range(1, count + 1))
    lock = threading.Lock()

    def worker():
        conn = connect(scheme, host, port, timeout=10)
        while True:
            with lock:
                key = next(next_key, None)
            if key is None or problems:
                break
            try:
                response, body = get(conn, f"{path}{key}")
            except (OSError, http.client.HTTPException) as err:
                problems.append(f"{path}{key}: {type(err).__name__}: {err}")
                break
            if response.status != 200 or (want_bytes is not None and len(body) != want_bytes):
                problems.append(f"{path}{key}: {describe(response, body)}")
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = connect(scheme, host, port, timeout=10)
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if problems:
        fail(f"warming {count} keys of {prefix} failed: {problems[0]}")


def cmd_sample(args):
    prefix, count, samples, want = args[0], int(args[1]), int(args[2]), args[3]
    scheme, host, port, path = split_url(prefix)
    conn = connect(scheme, host, port, timeout=10)
    others = {}
    for key in random.sample(range(1, count + 1), min(samples, count)):
        response, body = get(conn, f"{path}{key}")
        got = response.getheader(CACHE_STATUS)
        if response.status != 200 or got != want:
            others.setdefault(describe(response, body), []).append(key)
    conn.close()
    if others:
        text = "; ".join(f"{len(keys)} with {what} (e.g. {path}{keys[0]})" for what, keys in others.items())
        fail(f"of {samples} sampled keys of {prefix}, expected all 200 with {CACHE_STATUS}: {want}; got {text}")


def cmd_origin_requests(args):
    scheme, host, port, path = split_url(args[0])
    conn = connect(scheme, host, port)
    response, body = get(conn, path)
    conn.close()
    match = re.search(rb"\n\s*(\d+)\s+(\d+)\s+(\d+)", body)
    if response.status != 200 or not match:
        fail(f"{args[0]}: no stub_status counters in {body[:200]!r}")
    # The count includes this request: two readings differ by the requests between them plus one.
    print(int(match.group(3)))


def cmd_tiers(args):
    url, zone = args[0], args[1]
    scheme, host, port, path = split_url(url)
    conn = connect(scheme, host, port)
    response, body = get(conn, path)
    conn.close()
    if response.status != 200:
        fail(f"{url}: status {response.status}")
    counts = {"memory": 0, "disk": 0}
    for line in body.decode("utf-8", "replace").splitlines():
        match = re.match(r'voltfleet_proxy_cache_objects\{(.*)\}\s+(\d+)', line)
        if match and f'zone="{zone}"' in match.group(1):
            tier = re.search(r'tier="(\w+)"', match.group(1))
            if tier:
                counts[tier.group(1)] = int(match.group(2))
    print(counts["memory"], counts["disk"])


# ---------------------------------------------------------------------------- report

ROWS = [
    ("req/s", "rps", "{:,.0f}", True),
    ("p50 latency (ms)", "p50_ms", "{:.2f}", True),
    ("p99 latency (ms)", "p99_ms", "{:.2f}", True),
    ("CPU s / 100k req", "cpu_s_per_100k", "{:.2f}", True),
    ("peak RSS (MB)", "peak_rss_mb", "{:.1f}", True),
    ("origin requests", "origin_requests", "{:,d}", False),
    ("hit ratio (%)", "hit_ratio_pct", "{:.1f}", False),
    ("socket errors", "socket_errors", "{:,d}", False),
    ("non-2xx responses", "non_2xx", "{:,d}", False),
]


def print_table(scenario):
    n, v = scenario["nginx"], scenario["voltfleet"]
    print(f"({scenario['id']}) {scenario['title']}")
    print(f"    {scenario['command']}")
    print("    " + "-" * 66)
    print(f"    {'':<20}{'nginx':>15}{'voltfleet-proxy':>18}{'ratio v/n':>13}")
    print("    " + "-" * 66)
    for label, key, template, with_ratio in ROWS:
        nv, vv = n.get(key), v.get(key)
        r = ratio(vv, nv) if with_ratio else None
        print(f"    {label:<20}{fmt(template, nv):>15}{fmt(template, vv):>18}"
              f"{fmt('{:.2f}', r):>13}")
    print("    " + "-" * 66)
    for who, run in (("nginx", n), ("voltfleet-proxy", v)):
        if "failure" in run:
            print(f"    {who} FAILED: {run['failure']}")
    print()


def cmd_report(args):
    runs_path, meta_path, out_path = args[0], args[1], args[2]
    meta = json.load(open(meta_path, encoding="utf-8"))
    scenarios = paired_scenarios(meta, runs_path,
                                 [key for _, key, _, with_ratio in ROWS if with_ratio])

    params, host = meta["params"], meta["host"]
    print()
    print("=" * 70)
    print(f"voltfleet-proxy cache vs NGINX proxy_cache — {params['duration_s']} s per run, "
          f"{params['warmup_s']} s warm-up, {host['cpus']} CPUs shared by proxy, origin and "
          "load generator")
    print(f"load average before: {host['load_before']}")
    print(f"nginx {host['nginx_version']} (worker_processes 1, sendfile "
          f"{'on' if params['nginx_sendfile'] else 'off'}) | {host['voltfleet_version']} "
          "(threads = 1) | origin: nginx, 1 worker")
    print(f"zone: max_size {params['zone']['max_size']}, memory_size {params['zone']['memory_size']}, "
          f"memory_max_object_size {params['zone']['memory_max_object_size']}, "
          f"inactive {params['zone']['inactive']}; cache files under {params['cache_dir_fs']}")
    print("=" * 70)
    print()
    for scenario in scenarios:
        print_table(scenario)
    print("Summary, voltfleet-proxy / nginx (req/s: above 1 is better; latency: below 1 is better):")
    print(f"  {'':<34}{'req/s':>8}{'p50':>8}{'p99':>8}{'CPU/req':>9}")
    for scenario in scenarios:
        r = scenario.get("ratio")
        label = f"({scenario['id']}) {scenario['short']}"
        if r is None:
            print(f"  {label:<34}  a run failed; see its message above")
            continue
        print(f"  {label:<34}{fmt('{:.2f}', r['rps']):>8}{fmt('{:.2f}', r['p50_ms']):>8}"
              f"{fmt('{:.2f}', r['p99_ms']):>8}{fmt('{:.2f}', r['cpu_s_per_100k']):>9}")

    write_report(out_path, meta, scenarios)


if __name__ == "__main__":
    dispatch({
        "expect": cmd_expect,
        "warm": cmd_warm,
        "sample": cmd_sample,
        "origin-requests": cmd_origin_requests,
        "tiers": cmd_tiers,
        "report": cmd_report,
    }, __doc__)
