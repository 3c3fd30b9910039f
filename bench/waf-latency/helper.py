#!/usr/bin/env python3
"""Helpers for bench/waf-latency/run: the requests taken from the benign corpus, a check that
each route answers as it should, and the side-by-side report.

Standard library only; what it shares with the other benchmarks is in bench/lib/benchlib.py.
Subcommands (besides the shared ones: ports, probe, wrk-result):

  request CORPUS ID OUT        write the body of corpus request ID to OUT (empty when it has
                               none) and print its method, path?query, content type and one
                               `Name: value` line per header
  check URL STATUS [--method M] [--body FILE] [--type CT] [--header 'Name: value']...
                               send one request and fail unless it is answered STATUS
  line RESULT                  one line of a wrk result (from wrk-result), for the log
  report RUNS META OUT         print the tables and write OUT (JSON) from the runs file
"""

import json
import statistics
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from benchlib import connect, dispatch, fail, fmt, option, split_url, write_report  # noqa: E402

GOAL_ADDED_P99_US = 50.0


def cmd_request(corpus, wanted, out):
    with open(corpus, encoding="utf-8") as lines:
        for line in lines:
            request = json.loads(line)
            if request["id"] != wanted:
                continue
            with open(out, "w", encoding="utf-8") as body:
                body.write(request["body"] or "")
            target = request["path"] + (f"?{request['query']}" if request["query"] is not None else "")
            print(request["method"])
            print(target)
            print(request["content_type"] or "")
            for name, value in request["headers"]:
                print(f"{name}: {value}")
            return
    fail(f"no request {wanted} in {corpus}")


def cmd_check(args):
    url, status = args[0], int(args[1])
    method = option(args, "--method", "GET")
    body_path = option(args, "--body")
    content_type = option(args, "--type")
    headers = {"Host": "localhost"}
    for index, arg in enumerate(args):
        if arg == "--header" and index + 1 < len(args):
            name, _, value = args[index + 1].partition(":")
            headers[name.strip()] = value.strip()
    body = None
    if body_path:
        with open(body_path, "rb") as file:
            body = file.read()
    if content_type:
        headers["Content-Type"] = content_type
    scheme, host, port, path = split_url(url)
    conn = connect(scheme, host, port, timeout=5)
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    answer = response.read()
    conn.close()
    if response.status != status:
        fail(f"{method} {url}: answered {response.status}, expected {status}: {answer[:300]!r}")


def cmd_line(result):
    r = json.loads(result)
    print(f"{r['rps']:,.0f} req/s, p50 {r['p50_ms'] * 1000:,.0f} µs, p99 {r['p99_ms'] * 1000:,.0f} µs,"
          f" non-2xx {r['non_2xx']}, socket errors {r['socket_errors']}")


def cmd_report(runs_path, meta_path, out_path):
    with open(meta_path, encoding="utf-8") as file:
        meta = json.load(file)
    rounds = {}
    with open(runs_path, encoding="utf-8") as file:
        for line in file:
            run = json.loads(line)
            rounds.setdefault((run["kind"], run["connections"], run["route"]), []).append(run)
    runs = {key: median_run(measured) for key, measured in rounds.items()}
    scenarios = []
    for kind in meta["kinds"]:
        for connections in meta["connections"]:
            off = runs.get((kind["id"], connections, "off"))
            waf = runs.get((kind["id"], connections, "waf"))
            if not (off and waf):
                continue
            scenarios.append(scenario(kind, connections, off, waf))
    for s in scenarios:
        print_table(s)
    print()
    print("Summary (added = route with the firewall minus route without it):")
    for s in scenarios:
        line = (f"  {s['kind']:<5} {s['connections']:>3} conn.  added p50 {s['added']['p50_us']:+7.1f} µs,"
                f" p99 {s['added']['p99_us']:+7.1f} µs, CPU {s['added']['cpu_us_per_request']:+6.1f} µs/req,"
                f" req/s {s['ratio_rps']:.3f}x")
        if s["goal"] is not None:
            line += f"   {'MET    ' if s['goal']['met'] else 'NOT MET'} (goal: p99 added < {GOAL_ADDED_P99_US:.0f} µs)"
        print(line)
    write_report(out_path, meta, scenarios)


def cpu_us(run):
    return run["cpu_s"] * 1e6 / run["requests"] if run["requests"] else float("nan")


def median_run(measured):
    """One run standing for several rounds of the same request, load and route: each figure is
    the median of its rounds (CPU per request included), so one round disturbed by the machine
    does not decide the result."""
    merged = dict(measured[-1])
    for field in ("rps", "p50_ms", "p99_ms"):
        merged[field] = statistics.median(run[field] for run in measured)
    for field in ("non_2xx", "socket_errors"):
        merged[field] = sum(run[field] for run in measured)
    merged["requests"] = 1
    merged["cpu_s"] = statistics.median(cpu_us(run) for run in measured) / 1e6
    merged["rounds"] = len(measured)
    return merged


def scenario(kind, connections, off, waf):

    added = {
        "p50_us": (waf["p50_ms"] - off["p50_ms"]) * 1000.0,
        "p99_us": (waf["p99_ms"] - off["p99_ms"]) * 1000.0,
        "cpu_us_per_request": cpu_us(waf) - cpu_us(off),
    }
    # The goal is about the latency one request sees, so it is judged on one connection,
    # where nothing queues behind the request.
    goal = None
    if connections == 1:
        goal = {"added_p99_us": added["p99_us"], "met": added["p99_us"] < GOAL_ADDED_P99_US}
    return {
        "kind": kind["id"],
        "title": kind["title"],
        "command": kind["command"],
        "connections": connections,
        "off": dict(off, cpu_us_per_request=cpu_us(off)),
        "waf": dict(waf, cpu_us_per_request=cpu_us(waf)),
        "added": added,
        "ratio_rps": waf["rps"] / off["rps"] if off["rps"] else float("nan"),
        "goal": goal,
    }


def print_table(s):
    off, waf, added = s["off"], s["waf"], s["added"]
    rule = "    " + "-" * 66
    print()
    print(f"{s['title']}, {s['connections']} connection{'s' if s['connections'] > 1 else ''}")
    print(f"    {s['command'].replace('CONNS', str(s['connections']))}")
    print(rule)
    print(f"    {'':<26}{'waf off':>12}{'waf block':>12}{'added':>12}")
    print(rule)
    rows = [
        ("p50 latency (µs)", off["p50_ms"] * 1000, waf["p50_ms"] * 1000, added["p50_us"], "{:,.0f}", "{:+,.1f}"),
        ("p99 latency (µs)", off["p99_ms"] * 1000, waf["p99_ms"] * 1000, added["p99_us"], "{:,.0f}", "{:+,.1f}"),
        ("req/s", off["rps"], waf["rps"], waf["rps"] - off["rps"], "{:,.0f}", "{:+,.0f}"),
        ("proxy CPU µs / request", off["cpu_us_per_request"], waf["cpu_us_per_request"],
         added["cpu_us_per_request"], "{:,.1f}", "{:+,.1f}"),
        ("non-2xx / socket errors", None, None, None, None, None),
    ]
    for label, a, b, d, form, dform in rows:
        if form is None:
            cells = [f"{off['non_2xx']} / {off['socket_errors']}", f"{waf['non_2xx']} / {waf['socket_errors']}", "-"]
        else:
            cells = [fmt(form, a), fmt(form, b), fmt(dform, d)]
        print(f"    {label:<26}{cells[0]:>12}{cells[1]:>12}{cells[2]:>12}")
    print(rule)
    if s["goal"] is not None:
        verdict = "MET" if s["goal"]["met"] else "NOT MET"
        print(f"    goal {verdict}: p99 added {added['p99_us']:+.1f} µs (goal < {GOAL_ADDED_P99_US:.0f} µs)")


def main():
    dispatch({
        "request": lambda rest: cmd_request(rest[0], rest[1], rest[2]),
        "check": cmd_check,
        "line": lambda rest: cmd_line(rest[0]),
        "report": lambda rest: cmd_report(rest[0], rest[1], rest[2]),
    }, __doc__)


if __name__ == "__main__":
    main()
