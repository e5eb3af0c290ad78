"""Read real Ascend profiles into a :class:`~hetnpu.traces.read.Trace`.

- msprof ``op_summary_*.csv`` and torch_npu ``kernel_details.csv`` (the same table with renamed
  columns, :data:`~hetnpu.traces.msprof_schema.KERNEL_DETAILS_RENAMES`): one op per row, with
  its Task Type, start, duration, Block Dim, wait, text columns (shapes, dtypes, formats) and
  every PipeUtilization figure the profile kept; its mechanism from the ratios
  (:func:`~hetnpu.traces.attribution.pipe_mechanism`);
- msprof ``op_statistic_*.csv``: one op per (OP Type, Core Type) row standing for ``Count`` runs;
- msprof ``msprof_*.json`` and torch_npu ``trace_view.json``: the ``X`` events of the "Ascend
  Hardware" process are the device's tasks (one lane per stream); the "Overlap Analysis"
  process's lanes (Computing, Communication, Free) become unit spans. Host layers (Python, CANN)
  are not ops.

Malformed input is refused with :class:`~hetnpu.errors.InputError` naming the file, the line and
the column (``path:line:col``, the column being the CSV field's number or the JSON character).

Left out: msprof's ``.db`` files and the ``device_*/data`` raw files (msprof exports the CSV and
JSON this module reads); Task Types other than AI Core/Vector/CPU and HCCL are read as is.
"""

from __future__ import annotations

import csv
import io
import os
import re
from typing import Any

from hetnpu.errors import InputError
from hetnpu.traces.attribution import pipe_mechanism
from hetnpu.traces.msprof_schema import COMMON, KERNEL_DETAILS_RENAMES
from hetnpu.traces.read import OpSpan, Trace, UnitSpan

__all__ = ["is_ascend_timeline", "read_ascend_timeline", "read_msprof_csv"]

_MISSING = frozenset({"", "N/A", "NA", "null", "None"})
_PIPE_COLUMN = re.compile(r"(_ratio|_time\(us\)|_cycles|_rate|_fops|\(%\)|memory_bound)$")
_TEXT = frozenset(COMMON) - {
    "Task Start Time(us)",
    "Task Duration(us)",
    "Task Wait Time(us)",
    "Block Dim",
    "Op Name",
    "OP Type",
    "Task Type",
}
_STAT_NUMBERS = ("Min Time(us)", "Avg Time(us)", "Max Time(us)", "Ratio(%)")
_HARDWARE, _OVERLAP = "Ascend Hardware", "Overlap Analysis"


def parse_number(text: str) -> int | float | None:
    """An msprof cell as a number: ints stay ints, ``N/A`` and blanks are None.

    Raises ValueError for anything else. msprof pads some start times with a tab.
    """
    s = text.strip()
    if s in _MISSING:
        return None
    try:
        return int(s)
    except ValueError:
        return float(s)


class _Table:
    """A CSV read whole, with ``path:line:col`` for its errors."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        try:
            with open(self.path, encoding="utf-8-sig", newline="") as f:
                text = f.read()
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read ({exc.strerror})") from None
        except UnicodeDecodeError as exc:
            raise InputError(f"{self.path}: not UTF-8 text (byte {exc.start})") from None
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        self.rows: list[tuple[int, list[str]]] = []
        try:
            for record in reader:
                if record:
                    self.rows.append((reader.line_num, record))
        except csv.Error as exc:
            raise InputError(f"{self.path}:{reader.line_num}:1: not CSV ({exc})") from None
        if not self.rows:
            raise InputError(f"{self.path}:1:1: empty file, expected a header line")
        self.header_line, raw = self.rows.pop(0)
        self.raw_header = [h.strip() for h in raw]
        self.header = [KERNEL_DETAILS_RENAMES.get(h, h) for h in self.raw_header]
        for line, record in self.rows:
            if len(record) != len(self.header):
                col = min(len(record), len(self.header)) + 1
                raise InputError(
                    f"{self.path}:{line}:{col}: expected {len(self.header)} fields as in the "
                    f"header, found {len(record)} (a truncated or malformed row)"
                )

    def require(self, *names: str) -> None:
        missing = [n for n in names if n not in self.header]
        if missing:
            raise InputError(
                f"{self.path}:{self.header_line}:1: header lacks {', '.join(map(repr, missing))}"
            )

    def number(self, line: int, record: list[str], name: str, required: bool = False) -> Any:
        if name not in self.header:
            return None
        col = self.header.index(name)
        try:
            value = parse_number(record[col])
        except ValueError:
            raise InputError(
                f"{self.path}:{line}:{col + 1}: {name} {record[col].strip()!r} is not a number"
            ) from None
        if value is None and required:
            raise InputError(f"{self.path}:{line}:{col + 1}: {name} is missing")
        return value


def read_msprof_csv(path: str | os.PathLike[str]) -> Trace:
    """Read an ``op_summary``, ``kernel_details`` or ``op_statistic`` CSV (kind by header).

    Raises
    ------
    InputError
        Unreadable, not CSV, a header of none of these tables, a row with the wrong number of
        fields (truncated), or a non-number where a number belongs: named ``path:line:col``.
    """
    table = _Table(path)
    if "Task Duration(us)" in table.header:
        return _read_ops(table)
    if "Total Time(us)" in table.header and "Count" in table.header:
        return _read_statistic(table)
    raise InputError(
        f"{table.path}:{table.header_line}:1: not an msprof op_summary / op_statistic or a "
        "torch_npu kernel_details table (no 'Task Duration(us)', 'Duration(us)' or "
        "'Total Time(us)' column)"
    )


def _device(table: _Table, record: list[str]) -> str:
    if "Device_id" in table.header:
        dev = record[table.header.index("Device_id")].strip()
        if dev not in _MISSING:
            return f"npu:{dev}"
    return "npu"


def _text(table: _Table, record: list[str], name: str) -> str:
    return record[table.header.index(name)].strip() if name in table.header else ""


def _read_ops(table: _Table) -> Trace:
    table.require("Op Name", "Task Start Time(us)", "Task Duration(us)")
    pipe_cols = [h for h in table.header if _PIPE_COLUMN.search(h)]
    text_cols = [h for h in table.header if h in _TEXT]
    ops = []
    for line, rec in table.rows:
        pipe = tuple((c, table.number(line, rec, c)) for c in pipe_cols)
        op_type = _text(table, rec, "OP Type")
        block = table.number(line, rec, "Block Dim")
        ops.append(
            OpSpan(
                _text(table, rec, "Op Name"),
                op_type,
                _device(table, rec),
                float(table.number(line, rec, "Task Start Time(us)", required=True)),
                float(table.number(line, rec, "Task Duration(us)", required=True)),
                cores=int(block) if block is not None else 1,
                task_type=_text(table, rec, "Task Type"),
                wait_us=float(table.number(line, rec, "Task Wait Time(us)") or 0.0),
                mechanism=pipe_mechanism(op_type, dict(pipe)),
                pipe=pipe,
                attrs=tuple((c, _text(table, rec, c)) for c in text_cols),
            )
        )
    kind = "torch_npu" if "Accelerator Core" in table.raw_header else "msprof"
    return Trace(kind, tuple(ops), (), {"source": table.path, "columns": table.header})


def _read_statistic(table: _Table) -> Trace:
    table.require("OP Type", "Count", "Total Time(us)")
    ops = []
    for line, rec in table.rows:
        op_type = _text(table, rec, "OP Type")
        stats = tuple((c, table.number(line, rec, c)) for c in _STAT_NUMBERS if c in table.header)
        ops.append(
            OpSpan(
                op_type,
                op_type,
                _device(table, rec),
                0.0,
                float(table.number(line, rec, "Total Time(us)", required=True)),
                task_type=_text(table, rec, "Core Type"),
                count=int(table.number(line, rec, "Count", required=True)),
                pipe=stats,
            )
        )
    return Trace("msprof-statistic", tuple(ops), (), {"source": table.path})


def is_ascend_timeline(events: list[dict[str, Any]]) -> bool:
    """Whether a Chrome trace has msprof's "Ascend Hardware" process (msprof or torch_npu)."""
    return any(
        e.get("ph") == "M"
        and e.get("name") == "process_name"
        and (e.get("args") or {}).get("name") == _HARDWARE
        for e in events
    )


# Task names as the fixtures show them: graph-mode ``<OpType><n>`` (Cast66, Transpose95,
# MaxPoolWithArgmaxV12 for type MaxPoolWithArgmaxV1) and ATC-inserted ``trans_<OpType>_<n>``.
_GRAPH_TASK = re.compile(r"^(?:trans_)?([A-Z][A-Za-z]*?(?:V\d)?)_?\d*$")


def _op_type(name: str, args: dict[str, Any]) -> str:
    given = args.get("OP Type") or args.get("Op Type") or args.get("op_type")
    if given:
        return str(given)
    # torch_npu names kernels aclnn<Api>_<Kernel>_<OpType>.
    if name.startswith("aclnn") and name.count("_") >= 2:
        return name.rsplit("_", 1)[1]
    m = _GRAPH_TASK.match(name)
    return m.group(1) if m else ""


def read_ascend_timeline(events: list[dict[str, Any]], where: str) -> Trace:
    """The device tasks and overlap lanes of an msprof / torch_npu timeline (see module doc).

    Raises
    ------
    InputError
        A task's ``ts`` or ``dur`` is not a number (named by event index).
    """
    procs: dict[Any, str] = {}
    threads: dict[tuple[Any, Any], str] = {}
    for e in events:
        if e.get("ph") == "M" and e.get("name") in ("process_name", "thread_name"):
            label = str((e.get("args") or {}).get("name", ""))
            if e["name"] == "process_name":
                procs[e.get("pid")] = label
            else:
                threads[(e.get("pid"), e.get("tid"))] = label
    ops, units = [], []
    for i, e in enumerate(events):
        if e.get("ph") != "X" or procs.get(e.get("pid")) not in (_HARDWARE, _OVERLAP):
            continue
        try:
            ts, dur = float(e.get("ts")), float(e.get("dur", 0.0))
        except (TypeError, ValueError):
            raise InputError(
                f"{where}: event {i} ({e.get('name', '?')!r}): ts {e.get('ts')!r} / dur "
                f"{e.get('dur')!r} is not a number"
            ) from None
        name, args = str(e.get("name", "")), e.get("args") or {}
        lane = threads.get((e.get("pid"), e.get("tid")), str(e.get("tid")))
        if procs[e.get("pid")] == _OVERLAP:
            units.append(UnitSpan("npu", _OVERLAP, lane, name, ts, dur, dur))
            continue
        op_type = _op_type(name, args)
        ops.append(
            OpSpan(
                name,
                op_type,
                "npu",
                ts,
                dur,
                task_type=str(args.get("Task Type", "")),
                mechanism=pipe_mechanism(op_type, {}),
                attrs=(("Stream ID", str(args.get("Stream Id", ""))),),
            )
        )
    ops.sort(key=lambda o: (o.start_us, o.name))
    return Trace("msprof-timeline", tuple(ops), tuple(units), {"source": where})
