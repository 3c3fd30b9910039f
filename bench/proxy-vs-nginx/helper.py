#!/usr/bin/env python3
"""Helpers for bench/proxy-vs-nginx/run: free ports, readiness probes, parsing of wrk and
h2load output, and the side-by-side report (tables on stdout, JSON in results/latest.json).

Standard library only; what it shares with bench/cache-vs-nginx is in bench/lib/benchlib.py.
Subcommands:

  ports N                      print N free TCP ports on 127.0.0.1
  probe URL [--h2] [--bytes N] [--pid PID]
                               GET URL (TLS unverified) until it answers 200 with N body bytes;
                               with --h2 only check that TLS ALPN selects h2; give up if PID exits
  wrk-result FILE              turn wrk's stdout (with report.lua's JSON line) into a result
  h2load-result FILE LOG       the same for h2load's stdout and its --log-file
  report RUNS META OUT         print the tables and write OUT (JSON) from the runs file
"""

import json
import os
import re
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from benchlib import (dispatch, fail, fmt, paired_scenarios, percentile, ratio,  # noqa: E402
                      write_report)


# ---------------------------------------------------------------------------- tool output parsing


def cmd_h2load_result(path, log_path):
    text = open(path, encoding="utf-8", errors="replace").read()
    finished = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", text)
    counts = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout",
        text,
    )
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if not (finished and counts and codes):
        fail(f"cannot read h2load's summary in {path}:\n{text[-2000:]}")
    seconds = float(finished.group(1)) / (1000.0 if finished.group(2) == "ms" else 1.0)
    total, started, done, succeeded, failed, errored, timeout = map(int, counts.groups())
    c2xx, c3xx, c4xx, c5xx = map(int, codes.groups())
    durations = []
    with open(log_path, encoding="utf-8", errors="replace") as log:
        for row in log:
            fields = row.split("\t")
            if len(fields) >= 3 and fields[1].strip().isdigit():
                durations.append(int(fields[2]))
    durations.sort()
    result = {
        "requests": succeeded,
        "duration_s": seconds,
        "rps": succeeded / seconds if seconds else 0.0,
        "p50_ms": percentile(durations, 0.50) / 1000.0,
        "p99_ms": percentile(durations, 0.99) / 1000.0,
        "latency_samples": len(durations),
        "socket_errors": errored + timeout,
        "non_2xx": c3xx + c4xx + c5xx,
        "error_detail": {
            "total": total, "started": started, "done": done, "succeeded": succeeded,
            "failed": failed, "errored": errored, "timeout": timeout,
            "3xx": c3xx, "4xx": c4xx, "5xx": c5xx,
        },
    }
    print(json.dumps(result))


# ---------------------------------------------------------------------------- report

# (label, key, format, goal direction): direction +1 means higher is better, -1 lower is better.
ROWS = [
    ("req/s", "rps", "{:,.0f}"),
    ("p50 latency (ms)", "p50_ms", "{:.2f}"),
    ("p99 latency (ms)", "p99_ms", "{:.2f}"),
    ("CPU s / 100k req", "cpu_s_per_100k", "{:.2f}"),
    ("peak RSS (MB)", "peak_rss_mb", "{:.1f}"),
    ("socket errors", "socket_errors", "{:,d}"),
    ("non-2xx responses", "non_2xx", "{:,d}"),
]
P99_TOLERANCE = 1.05  # p99 counts as "no worse" within 5 % (run-to-run noise on a shared box)


def goal(scenario):
    n, v = scenario["nginx"], scenario["voltfleet"]
    if "failure" in n or "failure" in v:
        return {"met": False, "reason": "a run failed; see its message above"}
    rps = ratio(v["rps"], n["rps"])
    cpu = ratio(v["cpu_s_per_100k"], n["cpu_s_per_100k"])
    p99 = ratio(v["p99_ms"], n["p99_ms"])
    checks = {
        "more_rps": rps is not None and rps > 1.0,
        "less_cpu_per_request": cpu is not None and cpu < 1.0,
        "p99_no_worse": p99 is not None and p99 <= P99_TOLERANCE,
        "no_more_errors": (v["socket_errors"] + v["non_2xx"]) <= (n["socket_errors"] + n["non_2xx"]),
    }
    parts = [
        f"req/s {'higher' if checks['more_rps'] else 'NOT higher'} ({fmt('{:.2f}', rps)}x)",
        f"CPU/request {'lower' if checks['less_cpu_per_request'] else 'NOT lower'} "
        f"({fmt('{:.2f}', cpu)}x)",
        f"p99 {'no worse' if checks['p99_no_worse'] else 'WORSE'} ({fmt('{:.2f}', p99)}x)",
    ]
    if not checks["no_more_errors"]:
        parts.append(
            f"MORE ERRORS ({v['socket_errors'] + v['non_2xx']} vs "
            f"{n['socket_errors'] + n['non_2xx']})"
        )
    met = all(checks.values())
    return {"met": met, **checks, "ratios": {"rps": rps, "cpu": cpu, "p99": p99},
            "reason": ", ".join(parts)}


def print_table(scenario):
    n, v = scenario["nginx"], scenario["voltfleet"]
    title = f"({scenario['id']}) {scenario['title']}"
    print(title)
    print(f"    {scenario['command']}")
    print("    " + "-" * 66)
    print(f"    {'':<20}{'nginx':>15}{'voltfleet-proxy':>18}{'ratio v/n':>13}")
    print("    " + "-" * 66)
    for label, key, template in ROWS:
        nv, vv = n.get(key), v.get(key)
        r = ratio(vv, nv) if key not in ("socket_errors", "non_2xx") else None
        print(f"    {label:<20}{fmt(template, nv):>15}{fmt(template, vv):>18}"
              f"{fmt('{:.2f}', r):>13}")
    print("    " + "-" * 66)
    for who, run in (("nginx", n), ("voltfleet-proxy", v)):
        if "failure" in run:
            print(f"    {who} FAILED: {run['failure']}")
    g = scenario["goal"]
    print(f"    goal {'MET' if g['met'] else 'NOT MET'}: {g['reason']}")
    print()


def cmd_report(runs_path, meta_path, out_path):
    meta = json.load(open(meta_path, encoding="utf-8"))
    scenarios = paired_scenarios(meta, runs_path, [key for _, key, _ in ROWS[:5]])
    for entry in scenarios:
        entry["goal"] = goal(entry)

    print()
    print("=" * 70)
    sharing = ("proxy pinned to CPU 0, origin and load generator on the others"
               if meta["params"].get("pinned")
               else "shared by proxy, origin and load generator")
    print(f"voltfleet-proxy vs NGINX — {meta['params']['duration_s']} s per run, "
          f"{meta['params']['warmup_s']} s warm-up, {meta['host']['cpus']} CPUs {sharing}")
    print(f"load average before: {meta['host']['load_before']}")
    print(f"nginx {meta['host']['nginx_version']} (worker_processes 1) | "
          f"{meta['host']['voltfleet_version']} (threads = 1) | origin: nginx, 1 worker")
    print("=" * 70)
    print()
    for scenario in scenarios:
        print_table(scenario)
    print("Summary (goal: more req/s, less CPU per request, p99 no worse than nginx "
          f"within {round((P99_TOLERANCE - 1) * 100)} %, no more errors):")
    for scenario in scenarios:
        g = scenario["goal"]
        print(f"  ({scenario['id']}) {scenario['short']:<28} {'MET    ' if g['met'] else 'NOT MET'}"
              f"  {g['reason']}")
    met = sum(1 for s in scenarios if s["goal"]["met"])
    print(f"  {met} of {len(scenarios)} scenarios met the goal.")

    write_report(out_path, meta, scenarios)


def main():
    dispatch({
        "h2load-result": lambda rest: cmd_h2load_result(rest[0], rest[1]),
        "report": lambda rest: cmd_report(rest[0], rest[1], rest[2]),
    }, __doc__)


if __name__ == "__main__":
    main()
