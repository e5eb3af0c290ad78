"""What a sweep varies: grids and zipped lists of parameters, expanded into points.

A point is a plain dict of ``{parameter: value}``. A parameter is either a chip spec field
(``ai_cores``, ``hbm_bytes_per_s``, ``host_link.bytes_per_s``, ...: any
:class:`~hetnpu.devices.spec.NpuSpec` key) or one of the run parameters in :data:`RUN_KEYS`:

``batch``
    Rebinds dim 0 of every model input.
``shape`` / ``shape.INPUT``
    An input's whole shape, written ``1x3x224x224`` (``shape`` alone: the only input).
``precision``
    ``fp16``, ``fp32`` or ``int8``.
``double_buffer``
    ``true`` or ``false`` (chip simulation only).
``strategy`` / ``devices``
    Partition the model over ``devices`` (``npu+cpu``, ``npu+gpu+cpu``) with a placement
    strategy and time the whole system instead of the chip alone.

``prompt`` / ``generate`` / ``kv_cache`` / ``rope`` / ``mask``
    For an LLM (a decoder ``config.json`` or a shipped config name, :mod:`hetnpu.whatif.llm`):
    prompt tokens, tokens generated, and the graph the serving code runs: ``inplace``,
    ``concat`` or ``concat-repeat`` cache growth, ``fused`` or ``decomposed`` RoPE, and the
    prompt's causal mask as ``is_causal`` or a ``tensor``
    (:func:`~hetnpu.models.decoder.build_decoder`).

Values that are lists on the command line (shapes, device lists) use ``x`` and ``+`` so that
``,`` can separate the values of a sweep.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import itertools
import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hetnpu.devices.precision_modes import PRECISIONS
from hetnpu.devices.presets import flatten_table
from hetnpu.errors import ConfigError

__all__ = [
    "PRECISIONS",
    "RUN_KEYS",
    "Study",
    "check_keys",
    "is_run_key",
    "normalise_run_value",
    "parse_grid_items",
    "point_key",
    "spec_keys",
]

RUN_KEYS = (
    "batch", "shape", "precision", "double_buffer", "strategy", "devices",
    "prompt", "generate", "kv_cache", "rope", "mask",
)  # fmt: skip
"""Parameters that are not chip fields: what runs, rather than what it runs on."""
_NOT_SWEPT = ("name", "inherits")  # identity of the preset, not a property of the chip


def spec_keys() -> list[str]:
    """Chip spec keys a sweep may vary (every ``NpuSpec`` key but its name)."""
    from hetnpu.devices.spec import NpuSpec, flat_keys

    return [k for k in flat_keys(NpuSpec) if k not in _NOT_SWEPT]


def is_run_key(key: str) -> bool:
    """Whether ``key`` is a run parameter (``shape.INPUT`` included) rather than a chip field."""
    return key in RUN_KEYS or key.startswith("shape.")


def check_keys(keys: Sequence[str]) -> None:
    """Raise ConfigError naming the first key that is neither a chip field nor a run key."""
    known = spec_keys()
    for key in keys:
        if is_run_key(key) and key != "shape.":
            continue
        if key in known:
            continue
        close = difflib.get_close_matches(key, [*known, *RUN_KEYS], n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ConfigError(
            f"sweep key {key!r}: unknown{hint}; a sweep varies NpuSpec fields "
            f"(ai_cores, hbm_bytes_per_s, ...) or {', '.join(RUN_KEYS)}, shape.INPUT"
        )


def _parse_value(text: str) -> Any:
    text = text.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            continue
    return text


def parse_grid_items(items: Sequence[str], option: str = "--grid") -> dict[str, list[Any]]:
    """Parse ``KEY=v1,v2,...`` strings into ``{KEY: [v1, v2, ...]}`` (order kept).

    >>> parse_grid_items(["ai_cores=8,16", "hbm_bytes_per_s=0.6e12"])
    {'ai_cores': [8, 16], 'hbm_bytes_per_s': [600000000000.0]}
    """
    out: dict[str, list[Any]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        texts = values.split(",")
        if not sep or not key or not all(v.strip() for v in texts):
            raise ConfigError(f"{option} {item!r}: expected KEY=v1,v2,... (no empty values)")
        if key in out:
            raise ConfigError(f"{option} {key!r}: given twice")
        out[key] = [_parse_value(v) for v in texts]
    return out


def _positive_int(key: str, value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{key}: expected a positive integer, got {value!r}")
    return value


def normalise_run_value(key: str, value: Any) -> Any:
    """Check a run parameter's value and give it one canonical form (for hashing and CSV).

    >>> normalise_run_value("shape.x", [1, 3, 8, 8]), normalise_run_value("devices", "npu,cpu")
    ('1x3x8x8', 'npu+cpu')
    """
    if key == "batch":
        return _positive_int(key, value)
    if key == "shape" or key.startswith("shape."):
        dims = value
        if isinstance(value, str):
            dims = [d for d in value.lower().replace(" ", "").split("x") if d]
            try:
                dims = [int(d) for d in dims]
            except ValueError:
                raise ConfigError(f"{key}: expected dims like 1x3x224x224, got {value!r}") from None
        elif isinstance(value, int) and not isinstance(value, bool):
            dims = [value]
        if not isinstance(dims, list | tuple) or not dims:
            raise ConfigError(f"{key}: expected dims like 1x3x224x224, got {value!r}")
        return "x".join(str(_positive_int(key, d)) for d in dims)
    if key in ("prompt", "generate"):
        return _positive_int(key, value)
    if key == "kv_cache":
        from hetnpu.models.decoder import KV_CACHE_FORMS

        if value not in KV_CACHE_FORMS:
            raise ConfigError(
                f"kv_cache: expected one of {', '.join(KV_CACHE_FORMS)}, got {value!r}"
            )
        return value
    if key in ("rope", "mask"):
        from hetnpu.models.decoder import MASK_FORMS

        forms = {"rope": ("fused", "decomposed"), "mask": MASK_FORMS}[key]
        if value not in forms:
            raise ConfigError(f"{key}: expected one of {', '.join(forms)}, got {value!r}")
        return value
    if key == "precision":
        if value not in PRECISIONS:
            raise ConfigError(f"precision: expected one of {', '.join(PRECISIONS)}, got {value!r}")
        return value
    if key == "double_buffer":
        if not isinstance(value, bool):
            raise ConfigError(f"double_buffer: expected true or false, got {value!r}")
        return value
    if key == "strategy":
        from hetnpu.scheduler.placement import STRATEGIES

        if value not in STRATEGIES:
            raise ConfigError(f"strategy: expected one of {', '.join(STRATEGIES)}, got {value!r}")
        return value
    if key == "devices":
        from hetnpu.devices.names import DEVICES as KNOWN_DEVICES

        names = value
        if isinstance(value, str):
            names = [d for d in value.replace(",", "+").replace(" ", "").split("+") if d]
        if not isinstance(names, list | tuple) or not names:
            raise ConfigError(f"devices: expected a list like npu+cpu, got {value!r}")
        bad = [d for d in names if d not in KNOWN_DEVICES]
        if bad:
            raise ConfigError(
                f"devices: unknown device {bad[0]!r}; known devices: {', '.join(KNOWN_DEVICES)}"
            )
        return "+".join(names)
    raise ConfigError(f"sweep key {key!r}: not a run parameter")


def point_key(model_digest: str, spec_json: str, run: Mapping[str, Any]) -> str:
    """A stable hash of everything a point's result depends on (the resume cache key).

    The resolved chip spec is hashed, not the overrides, so two spellings of one chip
    (``ai_cores=8`` and ``8.0``) share a key and an edited preset file does not.
    """
    # The timing code too: another version may time the same point differently.
    payload = json.dumps(
        {"model": model_digest, "spec": spec_json, "run": dict(run), "code": timing_code_digest()},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


@functools.cache
def timing_code_digest() -> str:
    """Hash of the source of everything that times a point (simulator, scheduler, devices and
    graph packages, the decoder builders and the LLM timing model), so ``--resume`` never
    reuses a result an edited simulator would change. A release number would not notice an
    edit between releases."""
    import hetnpu

    root = Path(hetnpu.__file__).parent
    h = hashlib.sha256()
    parts = [root / sub for sub in ("simulator", "scheduler", "devices", "graph", "models")]
    parts += [root / "whatif" / "llm.py", root / "whatif" / "llm_sweep.py"]
    for part in parts:
        files = sorted(part.rglob("*")) if part.is_dir() else [part]
        for f in files:
            if f.suffix in (".py", ".toml", ".json") and f.is_file():
                h.update(str(f.relative_to(root)).encode())
                h.update(f.read_bytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Study:
    """A sweep: a model, a base chip, and the points to simulate.

    ``grid`` values combine as a cartesian product; ``zipped`` lists (all the same length) vary
    together, each zipped tuple combined with every grid point; every point also carries the
    ``fixed`` values. ``model`` is an ``.onnx`` path or a :mod:`hetnpu.models` name.
    """

    model: str
    chip: str = "ascend910"
    grid: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    zipped: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)

    @property
    def params(self) -> list[str]:
        """Every parameter a point carries, in declaration order (fixed, grid, zipped)."""
        return list(dict.fromkeys([*self.fixed, *self.grid, *self.zipped]))

    def points(self) -> list[dict[str, Any]]:
        """Expand the study into points (grid order: the last key varies fastest)."""
        lengths = {len(v) for v in self.zipped.values()}
        if len(lengths) > 1:
            raise ConfigError(
                "zipped lists must have equal lengths: "
                + ", ".join(f"{k}={len(v)}" for k, v in self.zipped.items())
            )
        for a, b, what in (
            (self.grid, self.zipped, "the grid and the zipped lists"),
            (self.fixed, self.grid, "the fixed values and the grid"),
            (self.fixed, self.zipped, "the fixed values and the zipped lists"),
        ):
            clash = sorted(set(a) & set(b))
            if clash:
                raise ConfigError(f"sweep key {clash[0]!r} appears in both {what}")
        for key, values in [*self.grid.items(), *self.zipped.items()]:
            if isinstance(values, str | bytes) or not isinstance(values, Sequence):
                raise ConfigError(f"sweep key {key!r}: expected a list of values, got {values!r}")
            if not values:
                raise ConfigError(f"sweep key {key!r}: no values")
        check_keys(self.params)
        zipped = [
            dict(zip(self.zipped, vals, strict=True))
            for vals in zip(*self.zipped.values(), strict=True)
        ] or [{}]
        grid = [
            dict(zip(self.grid, vals, strict=True))
            for vals in itertools.product(*self.grid.values())
        ]
        return [{**self.fixed, **g, **z} for g in grid for z in zipped]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "chip": self.chip,
            "grid": {k: list(v) for k, v in self.grid.items()},
            "zip": {k: list(v) for k, v in self.zipped.items()},
            "fixed": dict(self.fixed),
        }

    @classmethod
    def from_toml(cls, path: str | Path) -> Study:
        """Read a study file (see ``examples/sweep.toml``).

        Top-level ``model`` (an ``.onnx`` path relative to the file, or a model name) and
        ``chip``; tables ``[grid]`` and ``[zip]`` of lists and ``[fixed]`` of values. Dotted
        keys (``shape.input``, ``host_link.bytes_per_s``) may be written as TOML dotted keys.
        """
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such study file") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: {exc}") from None
        unknown = set(data) - {"model", "chip", "grid", "zip", "fixed"}
        if unknown:
            raise ConfigError(
                f"{path}: unknown key {sorted(unknown)[0]!r}; expected model, chip, grid, zip, "
                "fixed"
            )
        if not isinstance(data.get("model"), str):
            raise ConfigError(f"{path}: 'model' must be a string")
        if not isinstance(data.get("chip", "ascend910"), str):
            raise ConfigError(f"{path}: 'chip' must be a string")
        for table in ("grid", "zip", "fixed"):
            if not isinstance(data.get(table, {}), dict):
                raise ConfigError(f"{path}: [{table}] must be a table of keys")
        model = data["model"]
        if (path.parent / model).is_file():
            model = str((path.parent / model).resolve())
        chip = data.get("chip", "ascend910")
        if chip.endswith(".toml") and (path.parent / chip).is_file():
            chip = str((path.parent / chip).resolve())

        def lists(table: dict[str, Any]) -> dict[str, list[Any]]:
            return {k: v if isinstance(v, list) else [v] for k, v in flatten_table(table).items()}

        return cls(
            model=model,
            chip=chip,
            grid=lists(data.get("grid", {})),
            zipped=lists(data.get("zip", {})),
            fixed=flatten_table(data.get("fixed", {})),
        )
