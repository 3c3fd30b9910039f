#!/usr/bin/env python3
"""Check the WAF corpus: every line well-formed, the counts in corpus/README.md equal to the
files, and benign.py deterministic. Exits 0 when all holds, 1 on any mismatch.

    python3 bench/waf-corpus/assemble/check.py [--allow-missing] [--no-regen]

--allow-missing: the attack files are produced locally from their upstream repositories (see
the README) and a fresh clone does not have them; with this flag an absent file is reported and
its README rows are not checked, instead of failing.
--no-regen: skip running benign.py twice to compare its output with benign.jsonl.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CORPUS, HERE, KEYS  # noqa: E402

FILES = {"attacks-crs.jsonl": "crs", "attacks-libinjection.jsonl": "libinjection",
         "benign.jsonl": "voltfleet-synthetic"}
LABELS = ("sqli", "xss", "benign")
TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
PL = re.compile(r"^paranoia-level/([1-4]);")
MAX_BYTES = 15_000_000


class Checker:
    def __init__(self):
        self.errors: list[str] = []

    def fail(self, msg: str) -> None:
        if len(self.errors) < 200:
            print(f"FAIL {msg}")
        self.errors.append(msg)


def check_line(c: Checker, where: str, rec, want_source: str, ids: dict) -> None:
    if not isinstance(rec, dict):
        return c.fail(f"{where}: not a JSON object")
    keys = list(rec)
    if keys != list(KEYS):
        missing = [k for k in KEYS if k not in rec]
        extra = [k for k in rec if k not in KEYS]
        if missing or extra:
            return c.fail(f"{where}: missing keys {missing}, unexpected keys {extra}")
    for k in ("id", "label", "source", "method", "path"):
        if not isinstance(rec[k], str) or not rec[k]:
            return c.fail(f"{where}: {k} must be a non-empty string")
    for k in ("query", "content_type", "body", "note"):
        if rec[k] is not None and not isinstance(rec[k], str):
            return c.fail(f"{where}: {k} must be a string or null")
    if rec["id"] in ids:
        c.fail(f"{where}: id {rec['id']!r} already used at {ids[rec['id']]}")
    ids[rec["id"]] = where
    if rec["label"] not in LABELS:
        c.fail(f"{where}: label {rec['label']!r}")
    if rec["source"] != want_source:
        c.fail(f"{where}: source {rec['source']!r}, this file holds {want_source!r}")
    if (rec["label"] == "benign") != (want_source == "voltfleet-synthetic"):
        c.fail(f"{where}: label {rec['label']!r} in a file of source {want_source!r}")
    if not TOKEN.match(rec["method"]):
        c.fail(f"{where}: method is not an HTTP token")
    for k in ("path", "query"):
        v = rec[k]
        if v is not None and any(ord(ch) <= 0x20 or ord(ch) >= 0x7F or ch == "#" for ch in v):
            c.fail(f"{where}: {k} has a character that cannot go raw in a request target")
    if not rec["path"].startswith("/"):
        c.fail(f"{where}: path does not start with '/'")
    hs = rec["headers"]
    if not isinstance(hs, list) or not all(isinstance(h, list) and len(h) == 2 and all(isinstance(x, str) for x in h)
                                           for h in hs):
        return c.fail(f"{where}: headers must be a list of [name, value] string pairs")
    for name, value in hs:
        if not TOKEN.match(name) or any(ch in value for ch in "\r\n\0"):
            c.fail(f"{where}: header {name!r} is not sendable")
        if name.lower() in ("content-type", "content-length", "host"):
            c.fail(f"{where}: header {name!r} belongs in content_type or is set by the sender")
    if rec["body"] is not None and rec["content_type"] is None:
        c.fail(f"{where}: body without content_type")
    if want_source == "crs" and not PL.match(rec["note"] or ""):
        c.fail(f"{where}: CRS line without 'paranoia-level/N;' at the start of its note")


def channel(rec) -> str:
    return {"q": "query", "json": "json", "form": "form"}.get(rec["id"].rsplit("-", 1)[-1], "?")


def read_tables(readme: str) -> dict[str, list[list[str]]]:
    tables = {}
    for name, body in re.findall(r"<!-- ([a-z-]+):begin -->\n(.*?)<!-- \1:end -->", readme, re.S):
        rows = []
        for line in body.splitlines():
            if not line.startswith("|") or re.match(r"^\|[\s:|-]+\|$", line):
                continue
            rows.append([cell.strip().strip("`*") for cell in line.strip().strip("|").split("|")])
        tables[name] = rows[1:]  # without the header row
    return tables


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--allow-missing", action="store_true")
    ap.add_argument("--no-regen", action="store_true")
    ap.add_argument("--corpus", default=str(CORPUS))
    args = ap.parse_args()
    corpus = Path(args.corpus)
    c = Checker()

    readme_path = corpus / "README.md"
    if not readme_path.exists():
        print(f"FAIL {readme_path} is missing")
        return 1
    tables = read_tables(readme_path.read_text(encoding="utf-8"))
    for t in ("sources", "counts", "crs-levels", "libinjection-channels"):
        if t not in tables:
            c.fail(f"README.md has no <!-- {t}:begin --> ... <!-- {t}:end --> table")
    listed_sources = {row[0] for row in tables.get("sources", [])}

    ids: dict[str, str] = {}
    counts: collections.Counter = collections.Counter()
    levels: collections.Counter = collections.Counter()
    channels: collections.Counter = collections.Counter()
    present, total_bytes = [], 0
    for fname, source in FILES.items():
        path = corpus / fname
        if not path.exists():
            msg = f"{fname} is absent (produce it with the command in README.md)"
            if args.allow_missing:
                print(f"skip {msg}")
                continue
            c.fail(msg)
            continue
        present.append(fname)
        if source not in listed_sources:
            c.fail(f"source {source!r} of {fname} is not in the README's sources table")
        raw = path.read_bytes()
        total_bytes += len(raw)
        if raw and not raw.endswith(b"\n"):
            c.fail(f"{fname}: last line has no newline")
        n = 0
        for lineno, line in enumerate(raw.split(b"\n")[:-1] if raw.endswith(b"\n") else raw.split(b"\n"), start=1):
            where = f"{fname}:{lineno}"
            try:
                rec = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError:
                c.fail(f"{where}: not UTF-8")
                continue
            except json.JSONDecodeError as e:
                c.fail(f"{where}: not JSON ({e.msg})")
                continue
            check_line(c, where, rec, source, ids)
            if isinstance(rec, dict) and isinstance(rec.get("label"), str):
                n += 1
                counts[(fname, rec.get("source"), rec["label"])] += 1
                if source == "crs" and (m := PL.match(rec.get("note") or "")):
                    levels[(rec["label"], int(m.group(1)))] += 1
                if source == "libinjection" and isinstance(rec.get("id"), str):
                    channels[(rec["label"], channel(rec))] += 1
        print(f"read {fname}: {n} lines, {len(raw):,} bytes")

    # The README's numbers against the files.
    def compare(table: str, expected: dict, keyfn, files_needed: list[str]):
        if any(f not in present for f in files_needed):
            return
        seen = set()
        for row in tables.get(table, []):
            key, value = keyfn(row)
            if key is None:
                continue
            seen.add(key)
            actual = expected.get(key, 0)
            if value != actual:
                c.fail(f"README {table}: {' / '.join(map(str, key))} says {value}, the files have {actual}")
        for key, actual in expected.items():
            if key not in seen and actual:
                c.fail(f"README {table}: no row for {' / '.join(map(str, key))} ({actual} in the files)")

    def num(s: str) -> int:
        return int(s.replace(",", "").replace(" ", ""))

    def counts_row(row):
        if row[0].lower() == "total":
            return None, None
        fname, source, label, value = row[0], row[1], row[2], num(row[3])
        if fname not in present:
            return None, None
        return (fname, source, label), value

    compare("counts", dict(counts), counts_row, [])
    total_rows = [r for r in tables.get("counts", []) if r and r[0].lower() == "total"]
    if total_rows and all(f in present for f in FILES):
        if num(total_rows[0][3]) != sum(counts.values()):
            c.fail(f"README counts: total says {total_rows[0][3]}, the files have {sum(counts.values())}")

    level_exp = {}
    for (label, pl), v in levels.items():
        level_exp[(label, pl)] = v
    def level_rows():
        out = {}
        for row in tables.get("crs-levels", []):
            label = row[0]
            if label.lower() == "total":
                continue
            for pl in range(1, 5):
                out[(label, pl)] = num(row[pl])
            if len(row) > 5 and num(row[5]) != sum(num(x) for x in row[1:5]):
                c.fail(f"README crs-levels: the total of {label} is not the sum of its levels")
        return out
    if "attacks-crs.jsonl" in present:
        got = level_rows()
        for key in sorted(set(got) | set(level_exp)):
            if got.get(key, 0) != level_exp.get(key, 0):
                c.fail(f"README crs-levels: {key[0]} paranoia-level/{key[1]} says {got.get(key, 0)}, "
                       f"the file has {level_exp.get(key, 0)}")

    if "attacks-libinjection.jsonl" in present:
        for row in tables.get("libinjection-channels", []):
            label = row[0]
            for i, ch in enumerate(("query", "json", "form"), start=1):
                if num(row[i]) != channels.get((label, ch), 0):
                    c.fail(f"README libinjection-channels: {label} {ch} says {row[i]}, "
                           f"the file has {channels.get((label, ch), 0)}")
        if channels.get(("sqli", "?")) or channels.get(("xss", "?")):
            c.fail("attacks-libinjection.jsonl: ids that do not end in -q, -json or -form")

    if total_bytes > MAX_BYTES:
        c.fail(f"the corpus is {total_bytes:,} bytes, more than {MAX_BYTES:,}")
    else:
        print(f"ok   {total_bytes:,} bytes in {len(present)} files")

    # benign.py: same bytes twice, and the same as the file.
    if not args.no_regen:
        with tempfile.TemporaryDirectory() as tmp:
            outs = []
            for i in (1, 2):
                out = Path(tmp) / f"benign-{i}.jsonl"
                subprocess.run([sys.executable, str(HERE / "benign.py"), "--out", str(out)], check=True,
                               capture_output=True, env={"PYTHONHASHSEED": str(i), "PATH": "/usr/bin:/bin"})
                outs.append(out.read_bytes())
            if outs[0] != outs[1]:
                c.fail("benign.py wrote different bytes on two runs")
            elif (corpus / "benign.jsonl").exists() and outs[0] != (corpus / "benign.jsonl").read_bytes():
                c.fail("benign.jsonl is not what benign.py writes now: run benign.py and commit its output")
            else:
                print("ok   benign.py is deterministic and benign.jsonl is its output")

    if c.errors:
        print(f"{len(c.errors)} problem(s)")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
