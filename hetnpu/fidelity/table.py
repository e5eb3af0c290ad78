"""The published Ascend measurements the simulator is calibrated and validated against.

``data/calibration.csv`` is the project's copy of the calibration table: each row a published
figure (chip, model, input, batch, precision, metric, value, unit), the tool that measured it
and where it was published (repository, file, commit). This module reads it and says, row by
row, what hetnpu simulates for it: which chip preset, which model builder with which input, and
how the simulated latency becomes the row's metric; or why a row cannot be simulated yet.

What each tool times decides the mapping: ais_bench's throughput on the 310P3 is
``1000 * batch / mean NPU compute time`` (no host copies), which is the simulated latency of the
model on the chip; the 310's "Interface throughputRate" of the CANN benchmark tool is taken the
same way (per chip; the README's four-chip figures are divided by four in the table already).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from hetnpu.errors import ConfigError

__all__ = ["Row", "Target", "load_table", "target"]

CHIPS: Mapping[str, str] = {
    "310 (": "ascend310",
    "310P3": "ascend310p",
    "910B2": "ascend910b",
}
"""Prefix of the table's chip column -> the preset the row is simulated on."""

_MODELS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    # (pattern on the model column, builder name, builder options besides the batch)
    (r"^torchvision resnet18$", "resnet18", {}),
    (r"^torchvision resnet50$", "resnet50", {}),
    (r"^torchvision resnet101$", "resnet101", {}),
    (r"^torchvision resnext50_32x4d$", "resnext50_32x4d", {}),
    (r"^torchvision densenet121$", "densenet121", {}),
    (r"^torchvision vgg16$", "vgg16", {}),
    (r"^torchvision inception_v3$", "inception_v3", {}),
    (r"^torchvision shufflenet_v2_x1_0$", "shufflenet_v2_x1_0", {}),
    (r"^torchvision squeezenet1_1$", "squeezenet1_1", {}),
    (r"^shufflenet v1 1\.0x", "shufflenet_v1", {}),
    (r"^mobilenet_v1 1\.0$", "mobilenet_v1", {}),
    (r"^CRNN", "crnn", {}),
    (r"^YOLOv4$", "yolov4", {}),
    (r"^bert-base-uncased \(HF, SQuAD head\)$", "bert_squad", {"seq_len": 128}),
)

_NOT_YET: tuple[tuple[str, str], ...] = (
    (r"tensor parallel", "an LLM row on several NPUs: timed by hetnpu.whatif.parallel_search"),
    (r"torchair", "an LLM row: timed by the LLM what-if model (hetnpu.whatif.llm)"),
    (r"kernel launch overhead", "a statement of a host launch cost, not a model's time"),
    (
        r"single-core split-K",
        "a catlass kernel variant (one core, split K) unlike the MatMul CANN compiles",
    ),
)


@dataclass(frozen=True)
class Row:
    """One published measurement, as the table gives it."""

    index: int
    """Position in the table (0-based, header excluded): the row's name in reports."""
    chip: str
    model: str
    input: str
    batch: int
    precision: str
    metric: str
    value: float
    unit: str
    tool: str
    source: str
    """``repository/path@commit`` of the publication."""
    note: str = ""

    @property
    def label(self) -> str:
        return f"{self.model} b{self.batch} on {self.chip.split(' (')[0]}"


@dataclass(frozen=True)
class Target:
    """What to simulate for a row: the chip preset, the model and how to read the result."""

    row: Row
    preset: str
    builder: str
    """A name of :data:`hetnpu.models.MODELS`, or ``"matmul"`` for the GEMM rows."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Builder keyword arguments besides ``batch``."""

    @property
    def model_key(self) -> str:
        """What leave-one-model-out leaves out together: every batch of one network."""
        return self.builder


def load_table(path: str | Path | None = None) -> list[Row]:
    """The rows of the calibration table (the packaged copy unless ``path`` is given).

    Raises
    ------
    ConfigError
        The file is missing or a row lacks a column or has a bad number (line named).
    """
    if path is None:
        text = resources.files("hetnpu.fidelity").joinpath("data/calibration.csv").read_text()
        where = "hetnpu/fidelity/data/calibration.csv"
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"calibration table {path}: {exc.strerror}") from None
        where = str(path)
    rows = []
    for i, rec in enumerate(csv.DictReader(text.splitlines())):
        try:
            batch = int(rec["batch"]) if rec["batch"].strip() not in ("", "-") else 1
            rows.append(
                Row(
                    index=i,
                    chip=rec["chip"],
                    model=rec["model"],
                    input=rec["input"],
                    batch=batch,
                    precision=rec["precision"],
                    metric=rec["metric"],
                    value=float(rec["value"]),
                    unit=rec["unit"],
                    tool=rec["tool"],
                    source=f"{rec['source_repo']}/{rec['source_path']}@{rec['source_commit'][:12]}",
                    note=rec.get("note") or "",
                )
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: line {i + 2}: {type(exc).__name__}: {exc}") from None
    return rows


def target(row: Row) -> Target | str:
    """What hetnpu simulates for ``row``, or why it cannot yet (a sentence)."""
    for pattern, why in _NOT_YET:
        if re.search(pattern, row.model) or re.search(pattern, row.chip):
            return why
    preset = next((p for prefix, p in CHIPS.items() if row.chip.startswith(prefix)), None)
    if preset is None:
        return f"no preset for chip {row.chip!r}"
    if row.model.startswith("GEMM"):
        m, n, k = (int(x) for x in re.findall(r"[MNK](\d+)", row.input))
        return Target(row, preset, "matmul", {"m": m, "n": n, "k": k})
    for pattern, builder, options in _MODELS:
        if re.search(pattern, row.model):
            opts = dict(options)
            size = re.match(r"3x(\d+)x\1", row.input)
            if size and int(size.group(1)) != 224:
                opts["image_size"] = int(size.group(1))
            return Target(row, preset, builder, opts)
    return f"no builder for model {row.model!r}"
