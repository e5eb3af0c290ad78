"""A sweep through a real dask.distributed cluster gives what the local pool and sequential
runs give."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hetnpu.errors import ConfigError
from hetnpu.whatif import Study, run_study
from hetnpu.whatif.store import RESULTS

distributed = pytest.importorskip("distributed")


def test_dask_cluster_matches_local_pool_and_sequential(tmp_path: Path, stable) -> None:
    study = Study(
        "mlp",
        grid={"ai_cores": [8, 32], "hbm_bytes_per_s": [0.6e12, 1.2e12], "batch": [1, 8]},
        zipped={"precision": ["fp16", "int8"]},
    )
    seq = run_study(study, tmp_path / "seq", workers=1)
    pool = run_study(study, tmp_path / "pool", workers=2)
    with distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    ) as cluster:
        dask = run_study(study, tmp_path / "dask", scheduler=cluster.scheduler_address)
        with distributed.Client(cluster) as client:
            # The points ran in the cluster's worker processes: they loaded the model there.
            loaded = client.run(_graphs_loaded)
    assert len(loaded) == 2 and sum(loaded.values()) >= 1
    assert len(seq.rows) == 16 and not seq.failed
    assert stable(dask.rows) == stable(seq.rows) == stable(pool.rows)
    assert (tmp_path / "dask" / RESULTS).read_text().splitlines()[0] == (
        tmp_path / "seq" / RESULTS
    ).read_text().splitlines()[0]


def _graphs_loaded() -> int:
    from hetnpu.whatif.worker import load_graph

    return load_graph.cache_info().currsize


def test_unreachable_scheduler_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hetnpu.whatif import sweep

    monkeypatch.setattr(sweep, "_CONNECT_TIMEOUT_S", 1.0)
    with pytest.raises(ConfigError, match=re.escape("tcp://127.0.0.1:9")):
        run_study(Study("mlp", grid={"ai_cores": [8]}), tmp_path, scheduler="tcp://127.0.0.1:9")
