"""Sweeps submitted as job arrays through submitit: shards run by its local executor (real
subprocesses), one killed with SIGKILL mid-run and submitted again, merge into the bytes of an
unsharded run; the SLURM job array's parameters read from the sbatch script submitit writes
(a stand-in `sbatch` records it: no cluster); the command line's options checked before
anything is written; and the merged store read out of core with dask."""

import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import pytest
from sweep_problems import tiny_config
from typer.testing import CliRunner

import ssm_jax as sj
from ssm_jax.cli import app
from ssm_jax.sweeps import config
from ssm_jax.sweeps.store import stored_chunks
from ssm_jax.sweeps.submit import submit

submitit = pytest.importorskip("submitit")

CONFIG = tiny_config(seeds=3)


def _files(store: Path) -> dict[str, bytes]:
    root = store / "results.zarr"
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def _sweep(tmp_path, out: str, *flags: str) -> subprocess.Popen:
    """`ssm-jax sweep` in its own process (float32, as from the shell)."""
    return subprocess.Popen(
        [sys.executable, "-m", "ssm_jax", "sweep", str(tmp_path / "c.toml"), "--out",
         str(tmp_path / out), "--max-batch", "1", "--cpu-devices", "1", *flags],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, COLUMNS="400"))


def test_local_job_array_killed_shard_resubmitted_merges_to_the_single_run(tmp_path):
    (tmp_path / "c.toml").write_text(CONFIG)
    store = tmp_path / "sharded"
    reference = _sweep(tmp_path, "whole")  # unsharded, meanwhile
    submitted = _sweep(tmp_path, "sharded", "--submit", "local", "--shards", "2", "--wait")
    # Shard 1 (chunks 1, 3, ..., 11) is killed with SIGKILL once its first chunk is done.
    lock, deadline = store / "locks" / "shard-1-of-2.lock", time.time() + 120
    while not (stored_chunks(store) & {1, 3, 5, 7, 9, 11}) and time.time() < deadline:
        time.sleep(0.005)
    os.kill(json.loads(lock.read_text())["pid"], signal.SIGKILL)
    kept = stored_chunks(store) & {1, 3, 5, 7, 9, 11}
    assert 1 <= len(kept) < 6, kept  # killed mid-run
    words = " ".join(submitted.communicate(timeout=120)[0].split())
    assert submitted.returncode == 1, words
    logs = tmp_path / "sharded.logs"
    assert "Shard failed: shard 1/2 (job " in words and f"logs {logs}/" in words, words
    assert (f"To run the shards with chunks left: ssm-jax sweep {tmp_path / 'c.toml'} --out "
            f"{store} --submit local --shards 2 --resume --wait") in words
    # Submitted again, only the killed shard runs, and it redoes only its chunks left.
    again = _sweep(tmp_path, "sharded", "--submit", "local", "--shards", "2", "--resume",
                   "--wait")
    words = " ".join(again.communicate(timeout=120)[0].split())
    assert again.returncode == 0 and "submitted 1 shard jobs (local)" in words, words
    assert "12 members done by 2 shards" in words and not (store / "locks").exists()
    assert reference.communicate(timeout=120) and reference.returncode == 0
    merged, whole = _files(store), _files(tmp_path / "whole")
    assert merged.keys() == whole.keys() and merged == whole  # byte for byte
    # Out of core: dask arrays over the store's chunks, equal to the lazily read ones.
    lazy, chunked = sj.open_sweep(store), sj.open_sweep(store, chunks={})
    assert type(chunked.learning_time.data).__module__.startswith("dask")
    for name in lazy.data_vars:
        assert chunked[name].dims == lazy[name].dims, name
        assert chunked[name].values.tobytes() == lazy[name].values.tobytes(), name
    assert (chunked.learning_time.mean("seed").compute().values.tobytes()
            == lazy.learning_time.mean("seed").values.tobytes())


def _fake_slurm(tmp_path) -> Path:
    """`srun` and `sbatch` stand-ins: sbatch keeps the script it is given and answers as
    SLURM does."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    (bin_ / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_ / "sbatch").write_text(f"#!/bin/sh\ncp \"$1\" {tmp_path}/submitted.sh\n"
                                 "echo Submitted batch job 4242\n")
    for name in ("srun", "sbatch"):
        (bin_ / name).chmod(0o755)
    return bin_


def test_slurm_array_parameters_from_the_sbatch_script(tmp_path, monkeypatch):
    (tmp_path / "c.toml").write_text(CONFIG)
    monkeypatch.setenv("PATH", f"{_fake_slurm(tmp_path)}{os.pathsep}{os.environ['PATH']}")
    store, logs = tmp_path / "runs" / "w", tmp_path / "logs"
    result = CliRunner().invoke(app, [
        "sweep", str(tmp_path / "c.toml"), "--out", str(store), "--submit", "slurm",
        "--shards", "4", "--gpus-per-task", "1", "--time", "90", "--partition", "gpu",
        "--array-parallelism", "2", "--logs", str(logs)], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    words = " ".join(result.output.split())
    assert "submitted 4 shard jobs (slurm)" in words and "0/4: 4242_0" in words
    script = (tmp_path / "submitted.sh").read_text().splitlines()
    for line in ("#SBATCH --array=0-3%2", "#SBATCH --gpus-per-task=1", "#SBATCH --time=90",
                 "#SBATCH --partition=gpu", "#SBATCH --ntasks-per-node=1",
                 "#SBATCH --job-name=ssm-jax-sweep", "#SBATCH --signal=USR2@90",
                 f"#SBATCH --output={logs}/%A_%a/%A_%a_0_log.out"):
        assert line in script, (line, script)
    assert not store.exists()  # nothing is written before a shard's first chunk


@pytest.mark.parametrize("flags, words", [
    (["--wait"], "`--wait` is only allowed with --submit"),
    (["--shards", "2"], "`--shards` is only allowed with --submit"),
    (["--submit", "pbs", "--shards", "2"], "`--submit` = 'pbs' is not allowed: expected one "
     "of local, slurm"),
    (["--submit", "local", "--shards", "0"], "`--shards` = 0 is not allowed"),
    (["--submit", "local"], "`--shards` = None is not allowed"),
    (["--submit", "local", "--shards", "2", "--shard", "0/2"], "`--shard` is not allowed "
     "with --submit"),
    (["--submit", "local", "--shards", "2", "--time", "0"], "`--time` = 0 is not allowed"),
    (["--submit", "slurm", "--shards", "2"], "`--submit` = 'slurm' is not allowed here: no "
     "`srun` on the PATH"),
])
def test_cluster_options_are_checked_before_anything_is_written(tmp_path, flags, words,
                                                                monkeypatch):
    (tmp_path / "c.toml").write_text(CONFIG)
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # no srun
    result = CliRunner().invoke(app, ["sweep", str(tmp_path / "c.toml"), "--out",
                                      str(tmp_path / "w"), *flags], env={"COLUMNS": "400"})
    assert result.exit_code == 2 and words in " ".join(result.output.split()), result.output
    assert not (tmp_path / "w").exists() and not (tmp_path / "w.logs").exists()


def test_submit_refuses_before_submitting(tmp_path):
    (tmp_path / "c.toml").write_text(CONFIG)
    cfg = config.load(tmp_path / "c.toml")
    executor = submitit.LocalExecutor(folder=tmp_path / "logs")
    for kwargs, words in (({"executor": "slurm"}, "`executor` = 'slurm' is not allowed"),
                          ({"shards": 0}, "`shards` = 0 is not allowed"),
                          ({"shard": (0, 2)}, "`shard` is not allowed among"),
                          ({"chunk_size": 0}, "`chunk_size` = 0 is not allowed")):
        arguments = {"executor": executor, "shards": 2} | kwargs
        with pytest.raises(ValueError, match=words):
            submit(cfg.make_problem, cfg.grid, dynamics=cfg.dynamics,
                   store=tmp_path / "w", **arguments)
    assert not (tmp_path / "w").exists() and not list((tmp_path / "logs").glob("*.pkl"))
