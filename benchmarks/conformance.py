"""onnx's backend conformance suite: pass counts per category, hetnpu next to its peers.

Runs onnx's own test suite (``onnx.backend.test.BackendTest``: node cases, real/light, simple,
pytorch-converted and pytorch-operator models, CPU device) in one process against

- hetnpu with devices ``["cpu"]``,
- hetnpu with devices ``["sim-npu", "cpu"]`` and ``precision="fp32"``,
- onnxruntime's own backend (``onnxruntime.backend``),
- onnx's ``ReferenceEvaluator`` behind a minimal ``onnx.backend.base.Backend``,

and prints a table of passed / run per category, plus wall time per runtime::

    python benchmarks/conformance.py                       # every category, every runtime
    python benchmarks/conformance.py --categories Node,Simple --runtimes hetnpu-cpu,onnxruntime
    python benchmarks/conformance.py --write-known-failures tests/conformance/known_failures.json

``--write-known-failures`` records the hetnpu failures with a reason each, in the file the
conformance tests read.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
import unittest
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import onnx.backend.test
import onnxruntime
from onnx.backend.base import Backend, BackendRep

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from hetnpu.runtime.onnx_backend import configured

CATEGORIES = ("Node", "Real", "Simple", "PyTorchConverted", "PyTorchOperator")

HETNPU_CONFIGS: dict[str, tuple[list[str], dict[str, Any]]] = {
    "hetnpu-cpu": (["cpu"], {}),
    "hetnpu-sim-npu": (["sim-npu", "cpu"], {"precision": "fp32"}),
}


class _ReferenceRep(BackendRep):
    def __init__(self, model: onnx.ModelProto) -> None:
        from onnx.reference import ReferenceEvaluator

        self.ref = ReferenceEvaluator(model)
        inits = {t.name for t in model.graph.initializer}
        self.names = [i.name for i in model.graph.input if i.name not in inits]

    def run(self, inputs: Any, **kwargs: Any) -> tuple[Any, ...]:
        feed = inputs if isinstance(inputs, dict) else dict(zip(self.names, inputs, strict=False))
        return tuple(self.ref.run(None, feed))


class ReferenceBackend(Backend):
    """onnx's ReferenceEvaluator as an onnx backend (the peer onnx's own tests use)."""

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> _ReferenceRep:
        super().prepare(model, device, **kwargs)
        return _ReferenceRep(model)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        return device == "CPU"


def runtimes() -> dict[str, Callable[[], Any]]:
    """Runtime name -> factory of its onnx backend."""

    def ort_backend() -> Any:
        import onnxruntime.backend

        return onnxruntime.backend

    made: dict[str, Callable[[], Any]] = {
        name: (lambda d=devices, o=opts: configured(d, **o))
        for name, (devices, opts) in HETNPU_CONFIGS.items()
    }
    made["onnxruntime"] = ort_backend
    made["onnx-reference"] = lambda: ReferenceBackend
    return made


def run_suite(backend: Any, categories: tuple[str, ...]) -> dict[str, dict[str, str | None]]:
    """category -> {test name: None if it passed, else the last line of its error}."""
    suite = onnx.backend.test.BackendTest(backend, __name__)
    results: dict[str, dict[str, str | None]] = {}
    for cls_name, cls in suite.test_cases.items():
        category = cls_name.removeprefix("OnnxBackend").removesuffix("ModelTest")
        if category not in categories:
            continue
        names = sorted(n for n in dir(cls) if n.startswith("test_") and n.endswith("_cpu"))
        outcome: dict[str, str | None] = {}
        for name in names:
            result = unittest.TestResult()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cls(name).run(result)
            problems = result.failures + result.errors
            if problems:
                outcome[name] = _last_line(problems[0][1])
            elif result.skipped:
                outcome[name] = f"skipped: {result.skipped[0][1]}"
            else:
                outcome[name] = None
        results[category] = outcome
    return results


def _last_line(traceback: str) -> str:
    lines = [ln.strip() for ln in traceback.strip().splitlines() if ln.strip()]
    for i, line in enumerate(lines):
        if line.startswith("AssertionError") or line.startswith("Mismatched elements"):
            return " ".join(lines[i : i + 3])[:300]
    return lines[-1][:300] if lines else "unknown error"


# Cases whose expected outputs are draws of numpy's random generator: no runtime reproduces them,
# and a lucky draw would make them pass now and then. Listed, not run.
NONDETERMINISTIC = (
    r"^test_bernoulli(_double)?(_expanded)?_cpu$",
    r"^test_training_dropout",
)

# Why a case fails, by its name, then by what its error says; the first match gives the reason.
NAMED_REASONS: list[tuple[str, str]] = [
    (
        r"bernoulli|training_dropout",
        "random op: the suite's expected values are draws of numpy's generator, which "
        "onnxruntime's generator does not reproduce",
    ),
    (
        r"FLOAT8E4M3FN",
        "onnxruntime returns float8 tensors as raw uint8 bytes; the suite expects ml_dtypes' "
        "float8 dtype",
    ),
    (
        r"^test_(dft|stft)",
        "onnxruntime's DFT/STFT differ from numpy's FFT beyond rtol 1e-3 / atol 1e-7 on "
        "near-zero bins",
    ),
    (
        r"^test_loop16_seq_none",
        "onnx's runner compares a sequence's elements with len(), which fails on this case's "
        "0-d first element (TypeError in assert_similar_outputs) whatever the runtime returns; "
        "onnxruntime and onnx's reference evaluator fail it alike",
    ),
    (
        r"^test_maxunpool_export_with_output_shape",
        "MaxUnpool with output_shape: onnxruntime reads the indices as flat positions in "
        "output_shape, the suite's expected values as positions in the default output shape, "
        "padded; the spec does not settle which",
    ),
    (
        r"^test_attention_4d_causal_fp16",
        "onnxruntime's float16 Attention rounds one of the 192 outputs differently from the "
        "suite's value, by 4.9e-4: beyond rtol 1e-3 there",
    ),
    (
        r"^test_range_.*_expanded",
        "bfloat16 inputs send the stage to onnx's reference evaluator, which gives Range's "
        "expanded function body (a Loop) the wrong output shape, as it does for the float, "
        "float16 and int32 variants that onnxruntime runs right",
    ),
]

REASONS: list[tuple[str, str]] = [
    (
        r"can't be converted to MLDataType|No corresponding Numpy type for Tensor Type",
        "onnxruntime's Python API cannot pass tensors of this dtype (float8/float4/int4/uint4/"
        "bfloat16 numpy types) and the cpu backend falls back to onnx's ReferenceEvaluator only "
        "when onnxruntime rejects a model at load time, not at run time",
    ),
    (
        r"Pillow must be installed",
        "ImageDecoder's reference implementation needs Pillow: install hetnpu's 'image' extra",
    ),
    (
        r"Gradient",
        "ai.onnx.preview.training::Gradient: neither onnxruntime nor the reference evaluator "
        "runs it",
    ),
    (r"shape inference failed", "onnx's shape inference rejects the model hetnpu loads"),
    (
        r"Failed to load model|INVALID_ARGUMENT|NOT_IMPLEMENTED|RUNTIME_EXCEPTION|FAIL :",
        "onnxruntime rejects or fails the model and the reference-evaluator fallback does not "
        "apply to it",
    ),
    (r"DESIRED: dtype|dtype\(", "output dtype differs from the suite's expected one"),
    (
        r"Not equal to tolerance|Mismatched elements|Arrays are not equal",
        "numerical mismatch beyond the suite's tolerance (onnxruntime's kernel differs from the "
        "reference here)",
    ),
]


def reason_for(test: str, error: str) -> str:
    for pattern, reason in NAMED_REASONS:
        if re.search(pattern, test):
            return f"{reason} [{error[:160]}]"
    for pattern, reason in REASONS:
        if re.search(pattern, error):
            return f"{reason} [{error[:160]}]"
    return error[:240]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--categories", default=",".join(CATEGORIES))
    parser.add_argument("--runtimes", default=",".join(runtimes()))
    parser.add_argument("--write-known-failures", metavar="JSON", default=None)
    args = parser.parse_args(argv)
    categories = tuple(c for c in args.categories.split(",") if c)
    wanted = [r for r in args.runtimes.split(",") if r]
    table: dict[str, dict[str, dict[str, str | None]]] = {}
    seconds: dict[str, float] = {}
    # Light models' inputs are written under ONNX_HOME by the suite: keep them out of $HOME.
    os.environ.setdefault("ONNX_HOME", os.path.join(tempfile.gettempdir(), "hetnpu-onnx-home"))
    np.seterr(all="ignore")
    import onnxruntime

    onnxruntime.set_default_logger_severity(4)  # the suite's expected failures log loudly
    for name in wanted:
        backend = runtimes()[name]()
        t0 = time.perf_counter()
        table[name] = run_suite(backend, categories)
        seconds[name] = time.perf_counter() - t0
        print(f"{name}: done in {seconds[name]:.1f} s", file=sys.stderr, flush=True)
    _print_table(table, seconds, categories)
    if args.write_known_failures:
        _write_known_failures(args.write_known_failures, table)
    return 0


def _print_table(table, seconds, categories) -> None:  # type: ignore[no-untyped-def]
    names = list(table)
    width = max(len(n) for n in names) + 2
    print(f"{'category':<18}" + "".join(f"{n:>{width}}" for n in names))
    totals = {n: [0, 0] for n in names}
    for cat in categories:
        row = f"{cat:<18}"
        for n in names:
            res = table[n].get(cat, {})
            ok = sum(v is None for v in res.values())
            totals[n][0] += ok
            totals[n][1] += len(res)
            row += f"{f'{ok}/{len(res)}':>{width}}"
        print(row)
    print(f"{'total':<18}" + "".join(f"{f'{a}/{b}':>{width}}" for a, b in totals.values()))
    print(f"{'seconds':<18}" + "".join(f"{seconds[n]:>{width}.1f}" for n in names))
    for n in names:
        if n.startswith("hetnpu"):
            for peer in ("onnxruntime", "onnx-reference"):
                if peer in totals:
                    diff = totals[n][0] - totals[peer][0]
                    print(f"{n} passes {diff:+d} cases vs {peer}")


def _write_known_failures(path: str, table) -> None:  # type: ignore[no-untyped-def]
    from hetnpu.atomic import atomic_write_text

    configs = {}
    for name in HETNPU_CONFIGS:
        if name not in table:
            continue
        configs[name] = {
            test: reason_for(test, error)
            for cat in table[name].values()
            for test, error in sorted(cat.items())
            if error is not None
        }
    data = {
        "about": (
            "Cases of onnx's backend suite that fail through hetnpu.runtime.onnx_backend, with "
            "the reason each fails; tests/conformance marks them as expected failures, strict "
            "with the versions in 'recorded_with' (one that starts passing fails the run until "
            "it is removed here), except those matching 'nondeterministic' (random ops), which "
            "are not run. Written by benchmarks/conformance.py --write-known-failures."
        ),
        "recorded_with": {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
        "nondeterministic": list(NONDETERMINISTIC),
        "configs": configs,
    }
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=False) + "\n")
    print(f"wrote {sum(len(v) for v in configs.values())} known failures to {path}")


if __name__ == "__main__":
    raise SystemExit(main())
