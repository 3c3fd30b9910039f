#!/usr/bin/env python3
"""Build corpus/attacks-crs.jsonl from the OWASP CRS regression tests.

    python3 bench/waf-corpus/assemble/crs.py --repo /path/to/coreruleset [--commit HASH]

--repo is a clone of github.com/coreruleset/coreruleset, a bare git directory of it, or a plain
copy of its tree. The files are read at --commit (default HEAD) with `git show`, so the work
tree's state does not matter. The output is the same bytes for the same commit.

What is taken: the tests of the rule families 941 (XSS, label "xss") and 942 (SQL injection,
label "sqli") under tests/regression/tests/, and of those only the stages whose expected
outcome is that the file's rule matches (`log: expect_ids: [...]`, the older `log_contains:
id "942100"` or `log: match_regex`). Each stage's request is rebuilt as go-ftw, the CRS test
runner, puts it on the wire: default method GET and URI "/", a Content-Type of
application/x-www-form-urlencoded added to a body that has none, `key=value` pairs of such a
body percent-encoded unless they already look encoded, LF turned into CRLF in multipart
bodies, and so on (autocomplete_headers / stop_magic false turns those additions off).

The paranoia level of each rule comes from its `tag:'paranoia-level/N'` in
rules/REQUEST-94[12]-*.conf, and is written into the `note` of each line.

Needs PyYAML (`pip install pyyaml`).
"""

from __future__ import annotations

import argparse
import base64
import collections
import re
import sys
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import CORPUS, Source, copy_licence, die, write_jsonl  # noqa: E402

try:
    import yaml
except ImportError:  # pragma: no cover - depends on the machine
    die("PyYAML is missing: install it with `pip install pyyaml` (or `apt-get install python3-yaml`).")

FAMILIES = {
    "941": ("xss", "rules/REQUEST-941-APPLICATION-ATTACK-XSS.conf"),
    "942": ("sqli", "rules/REQUEST-942-APPLICATION-ATTACK-SQLI.conf"),
}
TEST_PATH = re.compile(r"(?:^|/)regression(?:-tests)?/tests/REQUEST-(941|942)-[A-Z0-9-]+/([^/]+)\.ya?ml$")

# Headers that every CRS test sends and that say nothing about the attack: the harness that
# replays the corpus sends its own. Any other value of these headers is kept.
BOILERPLATE = {
    "host": {"localhost"},
    "user-agent": {"OWASP CRS test agent", "OWASP ModSecurity Core Rule Set", "ModSecurity CRS 3 Tests"},
    "accept": {"text/xml,application/xml,application/xhtml+xml,text/html;q=0.9,text/plain;q=0.8,image/png,*/*;q=0.5",
               "*/*"},
    "connection": {"close"},
}
TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
FORM = "application/x-www-form-urlencoded"


class Skip(Exception):
    """A stage left out of the corpus; the message is the reason, counted in the summary."""


# --------------------------------------------------------------------------------------------
# Rules: paranoia level and inspected variables of each rule id


def parse_rules(text: str) -> dict[int, dict]:
    """{rule id: {"pl": N or None, "vars": [...], "phase": str}} from a CRS .conf file."""
    stmts, cur = [], ""
    for line in text.splitlines():
        s = line.strip()
        if not cur and (not s or s.startswith("#")):
            continue
        if s.endswith("\\"):
            cur += s[:-1] + " "
            continue
        cur += s
        stmts.append(cur)
        cur = ""
    rules: dict[int, dict] = {}
    section_pl = 1
    chained_to: int | None = None
    for st in stmts:
        m = re.match(r"(SecRule|SecAction)\s+(\S+)?", st)
        if not m:
            continue
        gate = re.search(r'TX:\w*PARANOIA_LEVEL"?\s+"@lt\s+(\d)"', st)
        if gate and "skipAfter" in st:
            section_pl = int(gate.group(1))
            chained_to = None
            continue
        variables = m.group(2).split("|") if m.group(1) == "SecRule" and m.group(2) else []
        if chained_to is not None:
            rules[chained_to]["vars"] += variables
            if not re.search(r"[\"',\s]chain[\"',\s]", st + ","):
                chained_to = None
            continue
        mid = re.search(r"[\"',\s]id:'?(\d+)", st)
        if not mid:
            continue
        rid = int(mid.group(1))
        tag = re.search(r"paranoia-level/(\d)", st)
        phase = re.search(r"phase:(\w+)", st)
        rules[rid] = {"pl": int(tag.group(1)) if tag else section_pl, "tagged": bool(tag),
                      "vars": variables, "phase": phase.group(1) if phase else "2"}
        if re.search(r"[\"',\s]chain[\"',\s]", st + ","):
            chained_to = rid
    return rules


def inspects_response(rule: dict) -> bool:
    return rule["phase"] in ("3", "4", "response") or any(
        v.lstrip("!&").upper().startswith("RESPONSE_") for v in rule["vars"])


# --------------------------------------------------------------------------------------------
# Tests: the formats met in the history of the CRS repository


def iter_tests(doc: dict, rule_id: int):
    """(test number, description, [(input, output), ...]) for each test of a test file.

    Handles the go-ftw format (`rule_id`, `test_id`, `stages: - input/output`) and the older
    FTW format (`test_title: 942100-1`, `stages: - stage: {input, output}`)."""
    for pos, t in enumerate(doc.get("tests") or [], start=1):
        if not isinstance(t, dict):
            continue
        num = t.get("test_id")
        if num is None:
            title = str(t.get("test_title") or "")
            mt = re.match(rf"^{rule_id}-(\d+)$", title)
            num = mt.group(1) if mt else pos
        stages = []
        for s in t.get("stages") or []:
            if isinstance(s, dict) and "stage" in s and "input" not in s:
                s = s["stage"]
            stages.append(((s or {}).get("input") or {}, (s or {}).get("output") or {}))
        yield str(num), str(t.get("desc") or t.get("description") or ""), stages


def expects_match(output: dict, rule_id: int) -> str:
    """'match' when the stage expects the rule to match, else a reason for leaving it out."""
    if output.get("expect_error"):
        return "expects a protocol error, not a rule match"
    log = output.get("log") or {}
    ids = log.get("expect_ids")
    if ids is None and "expect_id" in log:
        ids = [log["expect_id"]]
    ids = [int(i) for i in (ids if isinstance(ids, list) else [ids] if ids is not None else [])]
    if rule_id in ids:
        return "match"
    pat = re.compile(rf"(?<!\d){rule_id}(?!\d)")
    for regex in (log.get("match_regex"), output.get("log_contains")):
        if regex and pat.search(str(regex)):
            return "match"
    if ids or log.get("match_regex") or output.get("log_contains"):
        return "expects other rules to match, not this one"
    if log.get("no_expect_ids") or log.get("no_match_regex") or output.get("no_log_contains"):
        return "expects the rule not to match"
    return "no expectation about this rule (status or response only)"


# --------------------------------------------------------------------------------------------
# Requests


def go_query_escape(b: bytes) -> str:
    """Go's url.QueryEscape: unreserved bytes kept, space as '+', the rest %XX."""
    return urllib.parse.quote_plus(b, safe="")


def encode_form_data(data: bytes) -> bytes:
    """go-ftw's encoding of an application/x-www-form-urlencoded body: left alone when it
    already holds an escape ('%' or '+'), else each key and value of `k=v&...` escaped."""
    if b"%" in data or b"+" in data:
        return data
    out = []
    rest = data
    while rest:
        token, sep, rest = rest.partition(b"&")
        if b"=" in token:
            k, _, v = token.partition(b"=")
            out.append(f"{go_query_escape(k)}={go_query_escape(v)}")
        else:
            out.append(go_query_escape(token))
    return "&".join(out).encode()


def header_list(inp: dict) -> list[tuple[str, str]]:
    if inp.get("ordered_headers"):
        return [(str(h.get("name")), "" if h.get("value") is None else str(h.get("value")))
                for h in inp["ordered_headers"]]
    return [(str(k), "" if v is None else str(v)) for k, v in (inp.get("headers") or {}).items()]


def get(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for k, v in headers if k.lower() == name.lower()]


def parse_raw_request(raw: bytes):
    """(method, target, version, headers, body) of a raw HTTP/1.x request, or Skip when it is
    not one a proxy would accept (these tests are usually malformed on purpose)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise Skip("malformed raw request: no CRLF CRLF after the headers")
    if re.search(rb"(?<!\r)\n", head) or b"\0" in head:
        raise Skip("malformed raw request: bare LF or NUL in the head")
    lines = head.split(b"\r\n")
    m = re.fullmatch(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([!-~]+) (HTTP/1\.[01])", lines[0])
    if not m:
        raise Skip("malformed raw request: request line")
    headers = []
    for ln in lines[1:]:
        if ln[:1] in (b" ", b"\t"):
            raise Skip("malformed raw request: folded header line")
        name, colon, value = ln.partition(b":")
        if not colon or not TOKEN.match(name.decode("latin-1")):
            raise Skip("malformed raw request: header line")
        headers.append((name.decode("latin-1"), value.strip(b" \t").decode("utf-8", "surrogateescape")))
    te = [v.lower() for k, v in headers if k.lower() == "transfer-encoding"]
    cl = {v for k, v in headers if k.lower() == "content-length"}
    if te and cl:
        raise Skip("malformed raw request: both Transfer-Encoding and Content-Length")
    if te:
        if te != ["chunked"]:
            raise Skip("malformed raw request: Transfer-Encoding other than chunked")
        decoded, rest = b"", body
        while True:
            size_line, crlf, rest = rest.partition(b"\r\n")
            mm = re.fullmatch(rb"([0-9A-Fa-f]+)(;[^\r\n]*)?", size_line)
            if not crlf or not mm:
                raise Skip("malformed raw request: chunked body")
            n = int(mm.group(1), 16)
            if n == 0:
                if rest != b"\r\n":
                    raise Skip("malformed raw request: chunked body trailer")
                break
            if len(rest) < n + 2 or rest[n:n + 2] != b"\r\n":
                raise Skip("malformed raw request: chunk size")
            decoded, rest = decoded + rest[:n], rest[n + 2:]
        body = decoded
        headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
    elif cl:
        if len(cl) != 1 or not next(iter(cl)).isdigit() or int(next(iter(cl))) != len(body):
            raise Skip("malformed raw request: Content-Length does not match the body")
    elif body:
        raise Skip("malformed raw request: body without Content-Length")
    return (m.group(1).decode(), m.group(2).decode(), m.group(3).decode(), headers, body)


def build(inp: dict) -> list[tuple[str, str, str, list, bytes | None, list[str]]]:
    """The request(s) of one stage as go-ftw sends them: a list of
    (method, target, version, headers, body, remarks); several when `uris` is used."""
    if inp.get("follow_redirect"):
        raise Skip("stage follows a redirect of the previous stage")
    if inp.get("response"):
        raise Skip("test defines a backend response (response inspection)")
    raw = inp.get("encoded_request") or None
    if raw:
        try:
            raw_bytes = base64.b64decode(raw, validate=False)
        except ValueError:
            raise Skip("malformed raw request: encoded_request is not base64")
        method, target, version, headers, body = parse_raw_request(raw_bytes)
        return [(method, target, version, headers, body or None, ["from encoded_request"])]
    if inp.get("raw_request"):
        r = inp["raw_request"]
        r = "".join(r) if isinstance(r, list) else str(r)
        method, target, version, headers, body = parse_raw_request(r.encode("utf-8", "surrogateescape"))
        return [(method, target, version, headers, body or None, ["from raw_request"])]

    method = str(inp.get("method") or "GET")
    version = str(inp.get("version") or "HTTP/1.1")
    if not re.fullmatch(r"HTTP/1\.[01]", version):
        raise Skip(f"malformed request: version {version!r}")
    if not TOKEN.match(method):
        raise Skip("malformed request: method is not a token")
    uris = inp.get("uris") or [inp.get("uri") if inp.get("uri") is not None else "/"]
    headers = header_list(inp)
    autocomplete = inp.get("autocomplete_headers")
    if autocomplete is None:
        autocomplete = not inp["stop_magic"] if inp.get("stop_magic") is not None else True
    remarks = []
    if "data" in inp and inp["data"] is not None:
        d = inp["data"]
        if isinstance(d, list):  # old FTW: a list of lines
            d = "\r\n".join(str(x) for x in d)
            remarks.append("data lines joined with CRLF")
        d = str(d)
        if "{{" in d:
            raise Skip("data is a go-ftw template (not rendered here)")
        body = d.encode("utf-8")
    elif inp.get("encoded_data"):
        try:
            body = base64.b64decode(inp["encoded_data"])
        except ValueError:
            raise Skip("encoded_data is not base64")
    else:
        body = b""
    if body and autocomplete:
        if not get(headers, "Content-Type"):
            headers.append(("Content-Type", FORM))
        if any(v.lower() == FORM for v in get(headers, "Content-Type")):
            body = encode_form_data(body)
    if any("multipart/form-data;" in v.lower() for v in get(headers, "Content-Type")):
        body = body.replace(b"\n", b"\r\n")
    for k, v in headers:
        if not TOKEN.match(k):
            raise Skip("malformed request: header name is not a token")
        if any(c in v for c in "\r\n\0"):
            raise Skip("malformed request: CR, LF or NUL in a header value")
    cls = get(headers, "Content-Length")
    if cls and (len(set(cls)) != 1 or not cls[0].strip().isdigit() or int(cls[0]) != len(body)):
        raise Skip("malformed request: Content-Length does not match the body")
    out = []
    for uri in uris:
        uri = str(uri)
        if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in uri):
            raise Skip("malformed request: space or control character in the request target")
        rem = list(remarks)
        if any(ord(c) > 0x7E for c in uri):
            uri = urllib.parse.quote(uri, safe="".join(chr(i) for i in range(0x21, 0x7F)))
            rem.append("non-ASCII octets of the URI percent-encoded")
        out.append((method, uri, version, list(headers), body or None, rem))
    return out


def to_record(rid: int, label: str, pl: int, ident: str, desc: str, req) -> dict:
    method, target, version, headers, body, remarks = req
    if re.match(r"^https?://", target, re.I):
        parts = urllib.parse.urlsplit(target)
        target = (parts.path or "/") + (f"?{parts.query}" if "?" in target else "")
        remarks = remarks + [f"absolute-form target for host {parts.netloc}"]
    path, q, query = target.partition("?")
    ctype = None
    kept = []
    for k, v in headers:
        lk = k.lower()
        if lk == "content-length":
            continue
        if lk == "content-type" and body is not None and ctype is None:
            ctype = v
            continue
        if v in BOILERPLATE.get(lk, ()):
            continue
        kept.append([k, v])
    text = None
    if body is not None:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise Skip("body is not valid UTF-8")
    note = [f"paranoia-level/{pl}", f"rule {rid}"]
    if version != "HTTP/1.1":
        note.append(version)
    note += remarks
    desc = " ".join(desc.split())
    if desc:
        note.append(desc[:160])
    return {"id": ident, "label": label, "source": "crs", "method": method, "path": path,
            "query": query if q else None, "headers": kept, "content_type": ctype, "body": text,
            "note": "; ".join(note)}


# --------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", required=True, help="clone or git directory of coreruleset/coreruleset")
    ap.add_argument("--commit", default="HEAD", help="commit to read (default HEAD)")
    ap.add_argument("--out", default=str(CORPUS / "attacks-crs.jsonl"))
    args = ap.parse_args()

    src = Source(args.repo, args.commit, ["rules", "LICENSE"], "github.com/coreruleset/coreruleset")
    print(f"coreruleset commit {src.commit}")
    rules: dict[int, dict] = {}
    for fam, (_, conf) in FAMILIES.items():
        if not src.exists(conf):
            die(f"{conf} is missing at commit {src.commit}: not a CRS v3/v4 layout?")
        rules.update(parse_rules(src.read(conf).decode("utf-8")))
    untagged = sorted(r for r, v in rules.items() if not v["tagged"] and str(r)[:3] in FAMILIES
                      and r % 1000 >= 100)
    if untagged:
        print(f"  rules without a paranoia-level tag (level taken from their section): {untagged}")

    test_files = [(p, m.group(1)) for p in src.files() if (m := TEST_PATH.search(p))]
    if not test_files:
        die(f"no tests/regression/tests/REQUEST-941-*/ or REQUEST-942-*/ YAML files at commit {src.commit}")
    print(f"  {len(test_files)} test files")

    records, seen = [], set()
    skipped: collections.Counter = collections.Counter()
    excluded_rules: dict[int, str] = {}
    considered = 0
    for path, fam in test_files:
        label = FAMILIES[fam][0]
        try:
            docs = [d for d in yaml.safe_load_all(src.read(path).decode("utf-8")) if isinstance(d, dict)]
        except yaml.YAMLError as e:
            print(f"  warning: {path} is not valid YAML, skipped ({e.__class__.__name__})")
            skipped["test file is not valid YAML"] += 1
            continue
        for doc in docs:
            stem = Path(path).stem
            rid = int(doc.get("rule_id") or re.match(r"\d+", stem).group(0))
            rule = rules.get(rid)
            for num, desc, stages in iter_tests(doc, rid):
                multi = len(stages) > 1
                for si, (inp, out) in enumerate(stages, start=1):
                    considered += 1
                    verdict = expects_match(out, rid)
                    if verdict != "match":
                        skipped[verdict] += 1
                        continue
                    if rule is None:
                        skipped["rule id not found in the rules file"] += 1
                        continue
                    if re.search(r"false.?positive", desc, re.IGNORECASE):
                        # Benign requests CRS knows it matches: not attacks to be caught.
                        skipped["a documented false positive of the rule, not an attack"] += 1
                        continue
                    if inspects_response(rule):
                        skipped["rule inspects the response"] += 1
                        excluded_rules[rid] = "response"
                        continue
                    try:
                        reqs = build(inp)
                        for ui, req in enumerate(reqs, start=1):
                            ident = f"crs-{rid}-{num}" + (f"-s{si}" if multi else "") + \
                                    (f"-u{ui}" if len(reqs) > 1 else "")
                            if ident in seen:
                                raise Skip("duplicate test id")
                            rec = to_record(rid, label, rule["pl"], ident, desc, req)
                            seen.add(ident)
                            records.append(rec)
                    except Skip as e:
                        skipped[str(e)] += 1

    write_jsonl(Path(args.out), records)
    lic = copy_licence(src, "LICENSE", Path(args.out).parent / "LICENSES" / "coreruleset-LICENSE")

    by = collections.Counter((r["label"], r["note"].split(";")[0]) for r in records)
    print(f"  {considered} test stages read")
    print(f"wrote {len(records)} requests to {args.out}")
    for label in ("sqli", "xss"):
        n = sum(v for (lab, _), v in by.items() if lab == label)
        levels = ", ".join(f"{pl}: {by[(label, pl)]}" for pl in sorted({p for (lab, p) in by if lab == label}))
        print(f"  {label}: {n}  ({levels})")
    print(f"  skipped {sum(skipped.values())} stages:")
    for reason, n in sorted(skipped.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"    {n:5d}  {reason}")
    if excluded_rules:
        print(f"  rules excluded as response-side: {sorted(excluded_rules)}")
    print(f"copied the licence to {lic}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
