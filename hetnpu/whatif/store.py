"""A sweep's folder: the durable journal of finished points and the results table.

``points.jsonl`` is the record: one JSON line per finished point, appended with a single
``write`` on an ``O_APPEND`` descriptor and ``fsync``-ed before the point counts as done, so a
killed sweep keeps every point it finished. ``results.csv`` is derived from it and always
replaced whole (:mod:`hetnpu.atomic`), so no reader ever sees it half written. A line torn by a
crash mid-write (possible only on power loss) is dropped on resume and the journal rewritten.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from hetnpu.atomic import atomic_write_text
from hetnpu.errors import ConfigError

__all__ = ["JOURNAL", "RESULTS", "Journal", "csv_columns", "lock", "write_csv"]

JOURNAL = "points.jsonl"
RESULTS = "results.csv"
LEADING = ("key",)
METRICS = (
    "status",
    "cycles",
    "latency_s",
    "execute_latency_s",
    "throughput_per_s",
    "cost_proxy",
    "bound",
    "hbm_traffic_bytes",
    "hbm_traffic_bytes_per_s",
)
TRAILING = ("stages", "unsupported_ops", "events", "sim_wall_s", "sim_cpu_s", "error")


@contextlib.contextmanager
def lock(out: Path) -> Iterator[None]:
    """Hold ``out/.lock`` so two sweeps never write one folder; a killed holder releases it."""
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"{out}: another sweep is writing to this folder") from None
        # Temporary files of a writer killed mid-replace: never under a final name, now garbage.
        for name in (RESULTS, JOURNAL, "report.html"):
            for stale in out.glob(f".{name}.*.tmp"):
                stale.unlink(missing_ok=True)
        yield
    finally:
        os.close(fd)


class Journal:
    """Append-only, fsync-ed record of finished points in ``out/points.jsonl``."""

    def __init__(self, out: Path) -> None:
        self.path = out / JOURNAL
        self._fd: int | None = None

    def exists(self) -> bool:
        return self.path.is_file() and self.path.stat().st_size > 0

    def read(self) -> list[dict[str, Any]]:
        """Every intact record; a torn last line is dropped and the file rewritten without it."""
        if not self.path.is_file():
            return []
        raw = self.path.read_bytes()
        records, torn = [], False
        for line in raw.split(b"\n"):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError:
                torn = True
                continue
            if isinstance(rec, dict) and isinstance(rec.get("key"), str):
                records.append(rec)
            else:
                torn = True
        if torn or (raw and not raw.endswith(b"\n")):
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in records))
        return records

    def append(self, record: dict[str, Any]) -> None:
        """Write one record durably (one ``write`` call, then ``fsync``)."""
        if self._fd is None:
            new = not self.path.exists()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if new:  # the file's name must survive a crash too
                dfd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
        data = (json.dumps(record, sort_keys=True) + "\n").encode()
        written = os.write(self._fd, data)
        if written != len(data):  # short writes only happen on a full disk
            raise OSError(f"{self.path}: short write ({written} of {len(data)} bytes)")
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def csv_columns(rows: Sequence[dict[str, Any]], params: Sequence[str]) -> list[str]:
    """Columns: key, every parameter, the metrics, each unit's utilisation, then the rest."""
    busy = list(dict.fromkeys(k for r in rows for k in r if k.startswith("busy_")))
    known = {*LEADING, *params, *METRICS, *busy, *TRAILING}
    extra = list(dict.fromkeys(k for r in rows for k in r if k not in known))
    return [*LEADING, *params, *METRICS, *busy, *extra, *TRAILING]


def write_csv(path: Path, rows: Sequence[dict[str, Any]], params: Sequence[str]) -> None:
    """Replace ``path`` atomically with ``rows`` as CSV."""
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=csv_columns(rows, params), extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())
