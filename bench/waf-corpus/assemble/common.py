"""Helpers shared by the corpus assembly scripts (Python 3.11 standard library only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parent / "corpus"

# The keys of every corpus line, in the order they are written.
KEYS = ("id", "label", "source", "method", "path", "query", "headers",
        "content_type", "body", "note")


def die(msg: str, code: int = 2) -> None:
    print(f"error: {msg}", file=sys.stderr)
    sys.exit(code)


def dumps(record: dict) -> str:
    """One corpus line: keys in a fixed order, UTF-8 kept as is, no spaces between tokens."""
    missing = [k for k in KEYS if k not in record]
    extra = [k for k in record if k not in KEYS]
    if missing or extra:
        raise ValueError(f"record {record.get('id')!r}: missing {missing}, unexpected {extra}")
    return json.dumps({k: record[k] for k in KEYS}, ensure_ascii=False, separators=(",", ":"))


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for r in records:
            f.write(dumps(r))
            f.write("\n")
    os.replace(tmp, path)


class Source:
    """Read files of one commit of a repository, from a git directory (bare or not) or,
    failing that, from a plain directory tree (then the commit is unknown)."""

    def __init__(self, repo: str, commit: str, must_have: list[str], what: str):
        p = Path(repo).expanduser()
        if not p.exists():
            die(f"--repo {repo}: no such directory. Pass a clone (or bare git directory) of {what}.")
        self.root = p
        self.git_dir: str | None = None
        for cand in (p / ".git", p):
            if cand.exists() and self._is_git_dir(cand):
                self.git_dir = str(cand)
                break
        if self.git_dir is not None:
            try:
                self.commit = self._git("rev-parse", "--verify", f"{commit}^{{commit}}").decode().strip()
            except subprocess.CalledProcessError:
                die(f"--repo {repo}: commit {commit!r} is not in that repository.")
            self._tree = set(self._git("ls-tree", "-r", "--name-only", "-z", self.commit)
                             .decode("utf-8", "surrogateescape").split("\0")) - {""}
        else:
            if commit != "HEAD":
                die(f"--repo {repo} is not a git directory, so --commit {commit} cannot be honoured.")
            self.commit = "unknown (plain directory, not a git repository)"
            self._tree = {str(f.relative_to(p)) for f in p.rglob("*") if f.is_file()}
        for m in must_have:
            if not any(t == m or t.startswith(m.rstrip("/") + "/") for t in self._tree):
                die(f"--repo {repo} (commit {self.commit}) has no {m}: is it a copy of {what}?")

    @staticmethod
    def _is_git_dir(path: Path) -> bool:
        try:
            out = subprocess.run(["git", "--git-dir", str(path), "rev-parse", "--git-dir"],
                                 capture_output=True, check=False)
        except FileNotFoundError:
            die("git is not installed; it is needed to read the repository.")
        return out.returncode == 0

    def _git(self, *args: str) -> bytes:
        return subprocess.run(["git", "--git-dir", self.git_dir, *args],
                              capture_output=True, check=True).stdout

    def files(self) -> list[str]:
        return sorted(self._tree)

    def exists(self, path: str) -> bool:
        return path in self._tree

    def read(self, path: str) -> bytes:
        if self.git_dir is not None:
            return self._git("show", f"{self.commit}:{path}")
        return (self.root / path).read_bytes()

    def try_read(self, path: str) -> bytes | None:
        """The file's bytes, or None when the tree names it but its content is not there
        (a shallow or partial copy that left large blobs out)."""
        try:
            return self.read(path)
        except (subprocess.CalledProcessError, OSError):
            return None


def copy_licence(src: Source, path: str, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(src.read(path))
    return dest
