#!/usr/bin/env python3
"""Build corpus/attacks-libinjection.jsonl from libinjection's attack samples.

    python3 bench/waf-corpus/assemble/libinjection.py --repo /path/to/libinjection [--commit HASH]

--repo is a clone of github.com/libinjection/libinjection, a bare git directory of it, or a
plain copy of its tree; files are read at --commit (default HEAD). Python standard library only.

Which files: the ones libinjection's own positive sample tests read (src/test-samples-sqli-
positive.sh reads data/sqli-*.txt, src/test-samples-xss-positive.sh reads data/xss*), labelled
"sqli" and "xss". Not data/false_positives.txt (benign inputs once misflagged, read by the
negative test) and not data/tbd-*.txt (not yet classified, read by no test).

How a line becomes a payload, as libinjection's test reader does it: trailing spaces, tabs,
CR and LF removed; empty lines and lines starting with '#' skipped; then URL-decoded ('+' is a
space, %XX a byte). The payload bytes are then put on the wire by this script:

* every payload: GET /api/v1/locations?q=<payload percent-encoded>
* payload number i (counted per label, from 0) with i % 3 == 1 also as a JSON body:
  POST /api/v1/support/messages {"message": "<payload>"} (only if the payload is UTF-8)
* and with i % 3 == 2 as a form field: POST /support/contact, urlencoded
  email=...&message=<payload>

A payload seen before under the same label (the same bytes after decoding) is not repeated.
The three sample files of 4 MiB and more (LARGE below) are left out unless --include-large.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CORPUS, Source, copy_licence, die, write_jsonl  # noqa: E402

SELECT = [("sqli", re.compile(r"^data/sqli-[^/]*\.txt$")),
          ("xss", re.compile(r"^data/xss[^/]*$"))]
HEX = b"0123456789abcdefABCDEF"
# Sample files of 4 MiB and more, each larger than the rest of the corpus together: left out by
# default so that the corpus stays small (and the same whether or not a copy holds them).
LARGE = ["data/sqli-sqlmap-20130419.txt", "data/sqli-sqlmap.txt", "data/xss-shazzer.txt"]


def url_decode(s: bytes) -> bytes:
    """'+' to space and %XX to its byte; a '%' not followed by two hex digits stays as is."""
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c == 0x2B:
            out.append(0x20)
            i += 1
        elif c == 0x25 and i + 2 < len(s) and s[i + 1] in HEX and s[i + 2] in HEX:
            out.append(int(s[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(c)
            i += 1
    return bytes(out)


def payloads(text: bytes):
    """(line number, payload bytes) of one sample file."""
    for n, line in enumerate(text.split(b"\n"), start=1):
        line = line.rstrip(b" \t\r\n")
        if not line or line.startswith(b"#"):
            continue
        yield n, url_decode(line)


def pct(b: bytes) -> str:
    """Percent-encoding of a query value: only unreserved characters left as they are."""
    return urllib.parse.quote(b, safe="")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", required=True, help="clone or git directory of libinjection/libinjection")
    ap.add_argument("--commit", default="HEAD", help="commit to read (default HEAD)")
    ap.add_argument("--out", default=str(CORPUS / "attacks-libinjection.jsonl"))
    ap.add_argument("--include-large", action="store_true",
                    help=f"also take the large sample files ({', '.join(LARGE)})")
    args = ap.parse_args()

    src = Source(args.repo, args.commit, ["data", "COPYING"], "github.com/libinjection/libinjection")
    print(f"libinjection commit {src.commit}")
    files = [(label, p) for p in src.files() for label, rx in SELECT if rx.match(p)]
    if not files:
        die(f"no data/sqli-*.txt or data/xss* files at commit {src.commit}")
    left_out = [p for p in src.files() if p.startswith("data/") and p.endswith(".txt")
                and not any(rx.match(p) for _, rx in SELECT)]
    print(f"  sample files: {len(files)}; not attack samples, left out: {', '.join(left_out)}")
    if not args.include_large:
        large = [p for _, p in files if p in LARGE]
        files = [(label, p) for label, p in files if p not in LARGE]
        print(f"  large sample files left out (--include-large takes them): {', '.join(large)}")

    records = []
    seen: dict[str, set[bytes]] = {"sqli": set(), "xss": set()}
    index = collections.Counter()
    counts = collections.Counter()
    skipped = collections.Counter()
    absent = []
    for label, path in files:
        text = src.try_read(path)
        if text is None:
            if args.include_large:
                die(f"{path} is named at commit {src.commit} but its content is not in {args.repo} "
                    "(a partial copy?): use a full clone, or leave out --include-large")
            absent.append(path)
            continue
        stem = Path(path).stem
        nfile = 0
        for lineno, p in payloads(text):
            if p in seen[label]:
                skipped["duplicate payload (same bytes after decoding, same label)"] += 1
                continue
            seen[label].add(p)
            try:
                p.decode("utf-8")
            except UnicodeDecodeError:
                counts[(label, "not UTF-8")] += 1
            i = index[label]
            index[label] += 1
            nfile += 1
            base = f"li-{stem}-{lineno}"
            note = None  # the id names the file and the line: li-<file name less .txt>-<line>-<channel>
            records.append({"id": f"{base}-q", "label": label, "source": "libinjection",
                            "method": "GET", "path": "/api/v1/locations", "query": "q=" + pct(p),
                            "headers": [], "content_type": None, "body": None, "note": note})
            counts[(label, "query")] += 1
            if i % 3 == 1:
                try:
                    text_payload = p.decode("utf-8")
                except UnicodeDecodeError:
                    skipped["JSON-body copy: payload is not valid UTF-8"] += 1
                else:
                    records.append({"id": f"{base}-json", "label": label, "source": "libinjection",
                                    "method": "POST", "path": "/api/v1/support/messages", "query": None,
                                    "headers": [], "content_type": "application/json",
                                    "body": json.dumps({"message": text_payload}, ensure_ascii=False),
                                    "note": note})
                    counts[(label, "json")] += 1
            elif i % 3 == 2:
                body = "email=alex%40example.com&message=" + \
                       urllib.parse.quote_plus(p, safe="")
                records.append({"id": f"{base}-form", "label": label, "source": "libinjection",
                                "method": "POST", "path": "/support/contact", "query": None,
                                "headers": [], "content_type": "application/x-www-form-urlencoded",
                                "body": body, "note": note})
                counts[(label, "form")] += 1
        print(f"  {path}: {nfile} payloads")

    write_jsonl(Path(args.out), records)
    lic = copy_licence(src, "COPYING", Path(args.out).parent / "LICENSES" / "libinjection-COPYING")
    print(f"wrote {len(records)} requests to {args.out}")
    for label in ("sqli", "xss"):
        n = sum(v for (lab, ch), v in counts.items() if lab == label and ch in ("query", "json", "form"))
        print(f"  {label}: {n}  (distinct payloads {index[label]}; query {counts[(label, 'query')]}, "
              f"JSON body {counts[(label, 'json')]}, form body {counts[(label, 'form')]}; "
              f"payloads that are not UTF-8, percent-encoded: {counts[(label, 'not UTF-8')]})")
    if absent:
        print(f"  files named in the tree but whose content is not in this copy, left out: {', '.join(absent)}")
    for reason, n in sorted(skipped.items()):
        print(f"  skipped {n}: {reason}")
    print(f"copied the licence to {lic}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
