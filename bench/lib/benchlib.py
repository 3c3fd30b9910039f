"""What the benchmark helpers share (bench/proxy-vs-nginx/helper.py,
bench/cache-vs-nginx/helper.py): free ports, readiness probes, parsing of wrk's output through
report.lua, ratios and number formatting for the side-by-side tables, strict JSON.

Standard library only. Each helper.py imports it and adds its own subcommands; `dispatch`
runs the shared ones:

  ports N                      print N free TCP ports on 127.0.0.1
  probe URL [--h2] [--bytes N] [--pid PID] [--timeout S]
                               GET URL (TLS unverified) until it answers 200 with N body bytes;
                               with --h2 only check that TLS ALPN selects h2; give up if PID exits
  wrk-result FILE              turn wrk's stdout (with report.lua's JSON line) into a result
"""

import datetime
import http.client
import json
import math
import os
import re
import socket
import ssl
import sys
import time


def fail(message):
    print(f"helper.py: {message}", file=sys.stderr)
    sys.exit(1)


def option(args, name, default=None, convert=str):
    """The value after `name` in args, converted; default when absent."""
    if name not in args:
        return default
    index = args.index(name)
    if index + 1 >= len(args):
        fail(f"{name} needs a value")
    return convert(args[index + 1])


# ---------------------------------------------------------------------------- ports and probes


def cmd_ports(count):
    sockets = []
    for _ in range(int(count)):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
    print(" ".join(str(s.getsockname()[1]) for s in sockets))
    for sock in sockets:
        sock.close()


def split_url(url):
    match = re.match(r"(https?)://([^/:]+):(\d+)(/.*)", url)
    if not match:
        fail(f"cannot parse URL {url}")
    return match.group(1), match.group(2), int(match.group(3)), match.group(4)


def connect(scheme, host, port, timeout=2):
    if scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    return http.client.HTTPConnection(host, port, timeout=timeout)


def cmd_probe(args):
    url = args[0]
    want_h2 = "--h2" in args
    want_bytes = option(args, "--bytes", None, int)
    timeout = option(args, "--timeout", 10.0, float)
    pid = option(args, "--pid", None, int)
    scheme, host, port, path = split_url(url)
    deadline = time.monotonic() + timeout
    last = "no attempt"
    while time.monotonic() < deadline:
        if pid is not None and not os.path.exists(f"/proc/{pid}"):
            tried = "" if last == "no attempt" else f" (last: {last})"
            fail(f"the process (pid {pid}) exited before it answered {url}{tried}")
        try:
            if want_h2:
                # Only the ALPN negotiation is checked; h2load exercises the protocol itself.
                context = ssl.create_default_context()
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
                context.set_alpn_protocols(["h2", "http/1.1"])
                with socket.create_connection((host, port), timeout=2) as raw:
                    with context.wrap_socket(raw, server_hostname="localhost") as tls:
                        chosen = tls.selected_alpn_protocol()
                if chosen != "h2":
                    fail(f"{url}: TLS ALPN chose {chosen!r}, not 'h2'")
                return
            conn = connect(scheme, host, port)
            conn.request("GET", path, headers={"Host": "localhost"})
            response = conn.getresponse()
            body = response.read()
            conn.close()
            if response.status != 200:
                last = f"status {response.status}, body {body[:200]!r}"
            elif want_bytes is not None and len(body) != want_bytes:
                last = f"body of {len(body)} bytes, expected {want_bytes}"
            else:
                return
        except (OSError, http.client.HTTPException) as err:
            last = f"{type(err).__name__}: {err}"
        time.sleep(0.1)
    fail(f"{url} did not answer correctly within {timeout:.0f}s (last: {last})")


# ---------------------------------------------------------------------------- tool output parsing


def cmd_wrk_result(path):
    print(json.dumps(wrk_result(path)))


def wrk_result(path):
    text = open(path, encoding="utf-8", errors="replace").read()
    line = next((l for l in text.splitlines() if l.startswith("WRKJSON ")), None)
    if line is None:
        fail(f"no result line from report.lua in wrk's output {path}:\n{text[-2000:]}")
    raw = json.loads(line[len("WRKJSON "):])
    duration_s = raw["duration_us"] / 1e6
    errors = raw["errors"]
    return {
        "requests": raw["requests"],
        "duration_s": duration_s,
        "rps": raw["requests"] / duration_s if duration_s else 0.0,
        "p50_ms": raw["p50_us"] / 1000.0,
        "p99_ms": raw["p99_us"] / 1000.0,
        "bytes": raw["bytes"],
        "socket_errors": errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        "non_2xx": errors["status"],
        "error_detail": errors,
    }


def percentile(sorted_values, fraction):
    if not sorted_values:
        return float("nan")
    index = max(0, math.ceil(fraction * len(sorted_values)) - 1)
    return sorted_values[index]


# ---------------------------------------------------------------------------- tables and JSON


def ratio(v, n):
    if v is None or n is None:
        return None
    if isinstance(v, float) and math.isnan(v) or isinstance(n, float) and math.isnan(n):
        return None
    if n == 0:
        return None if v else 1.0
    return v / n


def fmt(template, value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return template.format(value)


def clean(value):
    """NaN and infinities become null, so the file is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    return value


def paired_scenarios(meta, runs_path, ratio_keys):
    """Each scenario of `meta` with the last result of each proxy (nginx and voltfleet) from
    the runs file, and voltfleet/nginx ratios of `ratio_keys` when both ran."""
    runs = [json.loads(line) for line in open(runs_path, encoding="utf-8") if line.strip()]
    scenarios = []
    for definition in meta["scenarios"]:
        entry = dict(definition)
        for proxy in ("nginx", "voltfleet"):
            found = [r for r in runs if r["scenario"] == definition["id"] and r["proxy"] == proxy]
            entry[proxy] = found[-1]["result"] if found else {"failure": "not run"}
        if "failure" not in entry["nginx"] and "failure" not in entry["voltfleet"]:
            entry["ratio"] = {key: ratio(entry["voltfleet"].get(key), entry["nginx"].get(key))
                              for key in ratio_keys}
        scenarios.append(entry)
    return scenarios


def write_report(out_path, meta, scenarios):
    """The results as strict JSON, with when they were made and on what host."""
    document = {
        "generated_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": meta["host"],
        "params": meta["params"],
        "scenarios": scenarios,
    }
    with open(out_path, "w", encoding="utf-8") as out:
        json.dump(clean(document), out, indent=2, allow_nan=False, default=str)
        out.write("\n")
    print(f"\nJSON: {out_path}")


SHARED = {
    "ports": lambda rest: cmd_ports(rest[0]),
    "probe": cmd_probe,
    "wrk-result": lambda rest: cmd_wrk_result(rest[0]),
}


def dispatch(commands, usage):
    """Runs the subcommand named by argv[1] from `commands` or the shared ones."""
    args = sys.argv[1:]
    if not args:
        fail(usage)
    command, rest = args[0], args[1:]
    handler = commands.get(command) or SHARED.get(command)
    if handler is None:
        fail(f"unknown command {command}\n{usage}")
    handler(rest)
