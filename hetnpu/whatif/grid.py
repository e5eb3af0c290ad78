"""What a sweep varies: grids and zipped lists of parameters, expanded into points.

A point is a plain dict of ``{parameter: value}``. Parameters are either chip spec fields
(``ai_cores``, ``hbm_bytes_per_s``, ...) or one of the run parameters in :data:`RUN_KEYS`.
Every point is validated (its chip built) before any simulation starts, so a bad key or value
fails the whole sweep at once with a message naming it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hetnpu.errors import ConfigError

__all__ = ["RUN_KEYS", "Study", "parse_grid_items", "point_key"]

RUN_KEYS = ("batch", "precision", "strategy", "double_buffer")
"""Parameters that are not chip fields: what runs, rather than what it runs on."""


def _parse_value(text: str) -> Any:
    text = text.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for cast in (int, float):
        try:
            value = cast(text)
        except ValueError:
            continue
        # 2.4e12 parses as float; keep integral floats as int so "ai_cores=8.0" still validates.
        return (
            int(value)
            if isinstance(value, float) and value.is_integer() and "e" not in text.lower()
            else value
        )
    return text


def parse_grid_items(items: Sequence[str], option: str = "--grid") -> dict[str, list[Any]]:
    """Parse ``KEY=v1,v2,...`` strings into ``{KEY: [v1, v2, ...]}`` (order kept)."""
    out: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise ConfigError(f"{option} {item!r}: expected KEY=v1,v2,...")
        if key in out:
            raise ConfigError(f"{option}: {key!r} is given twice")
        out[key] = [_parse_value(v) for v in values.split(",") if v.strip()]
    return out


def point_key(model_digest: str, chip: str, point: Mapping[str, Any]) -> str:
    """A stable hash of everything a point's result depends on (the cache key)."""
    payload = json.dumps(
        {"model": model_digest, "chip": chip, "point": dict(point)}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Study:
    """A sweep: a model, a base chip, and the points to simulate.

    ``grid`` values combine as a cartesian product; ``zipped`` lists (all the same length) vary
    together; every point also carries the ``fixed`` values.
    """

    model: str
    chip: str
    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    zipped: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)

    def points(self) -> list[dict[str, Any]]:
        lengths = {len(v) for v in self.zipped.values()}
        if len(lengths) > 1:
            raise ConfigError(
                "zipped lists must have equal lengths: "
                + ", ".join(f"{k}={len(v)}" for k, v in self.zipped.items())
            )
        clash = set(self.grid) & set(self.zipped)
        if clash:
            raise ConfigError(f"{sorted(clash)} appear in both the grid and the zipped lists")
        for key, values in [*self.grid.items(), *self.zipped.items()]:
            if not values:
                raise ConfigError(f"sweep parameter {key!r} has no values")
        zipped = [
            dict(zip(self.zipped, vals, strict=True))
            for vals in zip(*self.zipped.values(), strict=True)
        ] or [{}]
        grid = [
            dict(zip(self.grid, vals, strict=True))
            for vals in itertools.product(*self.grid.values())
        ]
        return [{**self.fixed, **g, **z} for g in grid for z in zipped]

    @classmethod
    def from_toml(cls, path: str | Path) -> Study:
        """Read a study file::

        model = "resnet50.onnx"
        chip = "ascend910"
        [fixed]
        precision = "fp16"
        [grid]
        ai_cores = [8, 16, 32]
        hbm_bytes_per_s = [0.6e12, 1.2e12]
        [zip]
        batch = [1, 8]
        """
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such study file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        unknown = set(data) - {"model", "chip", "grid", "zip", "fixed"}
        if unknown:
            raise ConfigError(
                f"{path}: unknown key(s) {sorted(unknown)}; expected model, chip, grid, zip, fixed"
            )
        for key in ("model", "chip"):
            if not isinstance(data.get(key), str):
                raise ConfigError(f"{path}: {key!r} must be a string")
        model = data["model"]
        if not Path(model).is_absolute():
            model = str((path.parent / model).resolve())
        return cls(
            model=model,
            chip=data["chip"],
            grid={
                k: list(v) if isinstance(v, list) else [v] for k, v in data.get("grid", {}).items()
            },
            zipped={
                k: list(v) if isinstance(v, list) else [v] for k, v in data.get("zip", {}).items()
            },
            fixed=dict(data.get("fixed", {})),
        )
