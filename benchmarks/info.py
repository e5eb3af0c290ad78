"""`hetnpu info` wall time, and the light models' MAC counts next to their published values.

Run: ``python benchmarks/info.py [--repeat 3]``. Prints two tables:

1. wall time of the ``hetnpu info`` command (a fresh process each run, as a user sees it), and of
   its in-process phases (load = check + shape inference, cost, stats), on ResNet-50 (the
   project's builder) and on a 10,000-node synthetic DAG;
2. MACs of every light model onnx ships, as hetnpu counts them, next to the published figure
   where one exists (torchvision's model documentation, "GFLOPS" column, which counts
   multiply-adds; the ShuffleNet paper; convnet-burden for AlexNet at 227×227).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import onnx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hetnpu.graph import load  # noqa: E402
from hetnpu.graph.cost import total_cost  # noqa: E402
from hetnpu.graph.stats import model_stats  # noqa: E402
from hetnpu.models import build  # noqa: E402
from hetnpu.models.synthetic import large_dag  # noqa: E402

LIGHT_DIR = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"

# Published multiply-accumulate counts (GMACs) at the light model's own input size.
PUBLISHED_GMACS: dict[str, tuple[float, str]] = {
    "light_resnet50": (4.09, "torchvision docs, ResNet50_Weights (GFLOPS = GMACs)"),
    "light_vgg19": (19.63, "torchvision docs, VGG19_Weights"),
    "light_densenet121": (2.83, "torchvision docs, DenseNet121_Weights"),
    "light_squeezenet": (0.35, "torchvision docs, SqueezeNet1_1_Weights"),
    "light_bvlc_alexnet": (0.727, "convnet-burden, alexnet at 227x227 (measured there too)"),
    "light_inception_v1": (1.50, "torchvision docs, GoogLeNet_Weights"),
    "light_shufflenet": (0.140, "ShuffleNet paper (Zhang et al. 2017), 1x g=3"),
}
# The published AlexNet count is at its native 227x227; the light model declares 224x224.
REBIND = {"light_bvlc_alexnet": {"data_0": [1, 3, 227, 227]}}


def _time_cli(path: Path, repeat: int) -> float:
    walls = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "hetnpu", "info", str(path)],
            check=True,
            capture_output=True,
            cwd=ROOT,
        )
        walls.append(time.perf_counter() - t0)
    return statistics.median(walls)


def _phases(path: Path) -> tuple[float, float, float, int]:
    t0 = time.perf_counter()
    g = load(path)
    t1 = time.perf_counter()
    total_cost(g)
    t2 = time.perf_counter()
    model_stats(g)
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2, len(list(g.nodes))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3, help="CLI runs per model (median)")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        models = {
            "resnet50": Path(tmp, "resnet50.onnx"),
            "synthetic 10k": Path(tmp, "dag10k.onnx"),
        }
        onnx.save(build("resnet50"), models["resnet50"])
        onnx.save(large_dag(10_000, seed=0), models["synthetic 10k"])
        print("hetnpu info wall time (median of", args.repeat, "fresh processes)")
        print(f"{'model':<15}{'nodes':>7}{'cli s':>8}{'load s':>8}{'cost s':>8}{'stats s':>9}")
        for name, path in models.items():
            load_s, cost_s, stats_s, n = _phases(path)
            cli = _time_cli(path, args.repeat)
            print(f"{name:<15}{n:>7}{cli:>8.2f}{load_s:>8.2f}{cost_s:>8.3f}{stats_s:>9.3f}")

    print()
    print("light models: MACs counted by hetnpu vs published")
    print(f"{'model':<22}{'hetnpu GMACs':>13}{'published':>11}{'diff':>8}  source")
    for path in sorted(LIGHT_DIR.glob("*.onnx")):
        g = load(path, input_shapes=REBIND.get(path.stem))
        gmacs = total_cost(g).macs / 1e9
        pub = PUBLISHED_GMACS.get(path.stem)
        if pub is None:
            print(f"{path.stem:<22}{gmacs:>13.3f}{'—':>11}{'':>8}  no published figure found")
            continue
        diff = (gmacs - pub[0]) / pub[0]
        print(f"{path.stem:<22}{gmacs:>13.3f}{pub[0]:>11.3f}{diff:>+8.1%}  {pub[1]}")


if __name__ == "__main__":
    main()
