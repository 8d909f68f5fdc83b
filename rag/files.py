"""File helpers every stage shares, one copy each: content hashes, an
exclusive lock, atomic publication of a directory, JSON Lines."""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator


def sha256_file(path: Path) -> str:
    """SHA-256 of a file's bytes, streamed (a huge file is not read into memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock (released when the process dies)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def replace_dir(work: Path, target: Path) -> None:
    """Put the finished directory ``work`` at ``target`` (same file system):
    an existing ``target`` is moved aside first and removed after, so a
    reader sees the old directory or the new one, never half of either."""
    work, target = Path(work), Path(target)
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(work, target)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def staging_dir(target: Path, prefix: str = ".staging-") -> Iterator[Path]:
    """A temporary directory beside ``target`` to write into; published at
    ``target`` by ``replace_dir`` when the block ends without an error, and
    removed in every case."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
    try:
        yield work
        replace_dir(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_jsonl(path: Path, error: type[Exception] = ValueError, hint: str = "") -> list[dict[str, Any]]:
    """Every JSON object of a JSON Lines file (blank lines skipped); a line
    that is not JSON raises ``error`` naming the file and the line."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise error(f"{Path(path).name} line {n} is not valid JSON ({exc.msg}){hint}") from exc
    return rows
