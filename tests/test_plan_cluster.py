"""plan --cluster: the analysis configurations run on a Dask distributed cluster give the
local run's results; an unreachable scheduler is one clear error."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compiler import paths
from compiler.frontend import datasets as D
from compiler.frontend import models
from compiler.ref import inputs
from compiler.sparse import cluster, contrib
from compiler.sparse import plan as sparse

distributed = pytest.importorskip("distributed")


def test_analysis_on_a_local_cluster_equals_the_local_run(tmp_path):
    g = sparse.prepare(models.load("mcunet-5fps"), input_size=32, classes=10)
    ds = D.load("digits")
    x = inputs.model_inputs(g, ds.x[:80])
    data = (x[:40], ds.y[:40], x[40:80], ds.y[40:80])
    body = sparse.body_layers(g)
    s = contrib.Settings(lr=5e-3)
    cfgs = [("head",), ("bias", 2), ("bias", 4), ("weight", body[-1], "1/8", 2),
            ("weight", body[-2], "1", 2), ("plan", 2, ((body[-1], "1/4"), (body[-3], "1/2")))]
    local = contrib._Runner(g, *data, s, 1, None, False).run(cfgs, "local")
    # the workers import the project the way this process does
    os.environ["PYTHONPATH"] = os.pathsep.join([str(paths.REPO), os.environ.get("PYTHONPATH", "")])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as lc:
        client = cluster.connect(lc.scheduler_address)
        try:
            runner = contrib._Runner(g, *data, s, None, tmp_path, False, cluster=client)
            remote = runner.run(cfgs, "cluster")
            workers = client.scheduler_info()["workers"]
            done = {w: n for w, n in client.run(lambda dask_worker: len(dask_worker.data)).items()}
        finally:
            client.close()
    assert len(workers) == 2 and len(done) == 2
    assert runner.cached == 0 and remote == local and len(set(local.values())) > 1
    # every result was cached as it came in
    again = contrib._Runner(g, *data, s, 1, tmp_path, False)
    assert again.run(cfgs, "again") == local and again.cached == len(cfgs)


def test_unreachable_scheduler_is_one_clear_error(tmp_path):
    t0 = time.time()
    with pytest.raises(sparse.PlanError, match="cannot reach the Dask scheduler at 'tcp://127.0.0.1:9'"):
        cluster.connect("tcp://127.0.0.1:9", timeout=5)
    assert time.time() - t0 < 30
    r = subprocess.run([sys.executable, "-m", "compiler", "plan", "mcunet-5fps", "--data", "digits",
                        "--cluster", "tcp://127.0.0.1:9", "--quiet", "--cache", str(tmp_path),
                        "--out", str(tmp_path / "p.json")],
                       capture_output=True, text=True, timeout=300, cwd=paths.REPO,
                       env={**os.environ, "PYTHONPATH": str(paths.REPO)})
    assert r.returncode != 0
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "cannot reach the Dask scheduler" in err[0], r.stderr
    assert not Path(tmp_path / "p.json").exists()
