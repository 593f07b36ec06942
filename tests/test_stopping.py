"""Stopping a sweep: SIGINT (Ctrl-C) and SIGTERM (a scheduler's) mid-run stop the command
within seconds, keep the finished chunks, release the store, say how to finish and exit 130 /
143; finishing with --resume leaves the very bytes of an uninterrupted sweep."""

import os
from pathlib import Path
import signal
import subprocess
import sys
import time

from sweep_problems import tiny_config

CONFIG = tiny_config(ratio=(1, 2, 3), power=(0.0, 0.5, 1.0))


def _sweep(tmp_path: Path, out: str, *flags: str) -> subprocess.Popen:
    env = dict(os.environ, SSM_JAX_CACHE_DIR=str(tmp_path / "cache"))
    return subprocess.Popen([sys.executable, "-m", "ssm_jax", "sweep", str(tmp_path / "c.toml"),
                             "--out", str(tmp_path / out), "--max-batch", "1",
                             "--cpu-devices", "1", *flags], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _stop_after(proc, done: Path, chunks: int, signum) -> tuple[int, str, float]:
    """Sends `signum` once `chunks` more chunks are done; (exit code, output, seconds from the
    signal to the exit)."""
    start = len(list(done.glob("*.json"))) if done.exists() else 0
    deadline = time.time() + 240
    while (not done.exists() or len(list(done.glob("*.json"))) < start + chunks) and \
            time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    assert proc.poll() is None, "the sweep ended before it could be stopped"
    sent = time.time()
    proc.send_signal(signum)
    output = proc.communicate(timeout=60)[0]
    return proc.returncode, " ".join(output.split()), time.time() - sent


def _files(store: Path) -> dict[str, bytes]:
    results = store / "results.zarr"
    return {str(p.relative_to(store)): p.read_bytes() for p in sorted(results.rglob("*"))
            if p.is_file()} | {"manifest.json": (store / "manifest.json").read_bytes()}


def test_signals_stop_the_sweep_and_resume_gives_the_same_bytes(tmp_path):
    (tmp_path / "c.toml").write_text(CONFIG)
    store, done = tmp_path / "stopped", tmp_path / "stopped" / "done"
    code, output, seconds = _stop_after(_sweep(tmp_path, "stopped"), done, 3, signal.SIGINT)
    assert code == 130 and seconds < 10, (code, output)
    kept = len(list(done.glob("*.json")))
    assert f"Stopped by SIGINT: {kept} of 18 members are kept in {store}. To finish the " \
           f"sweep, run: ssm-jax sweep {tmp_path / 'c.toml'} --out {store} --resume" in output
    assert not (store / "locks").exists() and not list(store.glob(".*"))
    code, output, seconds = _stop_after(_sweep(tmp_path, "stopped", "--resume"), done, 3,
                                        signal.SIGTERM)
    assert code == 143 and seconds < 10 and "Stopped by SIGTERM" in output, (code, output)
    assert len(list(done.glob("*.json"))) > kept
    finished = _sweep(tmp_path, "stopped", "--resume").communicate(timeout=240)[0]
    assert "18 members" in finished, finished
    reference = _sweep(tmp_path, "whole")
    assert reference.communicate(timeout=240)[0] and reference.returncode == 0
    assert _files(store) == _files(tmp_path / "whole")
