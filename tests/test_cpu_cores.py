"""A CPU host's cores as JAX devices: `use_cpu_cores` before JAX starts, its refusals after,
and `ssm-jax sweep` spreading its chunks over them with the numbers of one device (devices
started otherwise warn: `test_sweep.test_four_devices_give_the_numbers_of_one`)."""

import os
from pathlib import Path
import subprocess
import sys

import jax
import numpy as np
import pytest
from sweep_problems import tiny_config

import ssm_jax as sj

HERE = Path(__file__).parent
TINY = tiny_config()


def _python(code: str, **env) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(os.environ, **env), timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_cores_are_set_before_jax_starts_and_kept_after():
    out = _python("import ssm_jax as sj, jax\n"
                  "print(sj.use_cpu_cores(3), len(jax.devices()), sj.use_cpu_cores(),\n"
                  "      jax.config.read('jax_cpu_enable_async_dispatch'))")
    assert out.split() == ["3", "3", "3", "False"]  # inline: several devices cannot hang
    # A number the environment asks for is kept; by default, the usable cores.
    out = _python("import ssm_jax as sj\nprint(sj.use_cpu_cores())", JAX_NUM_CPU_DEVICES="2")
    assert out.split() == ["2"]
    out = _python("import ssm_jax as sj, os\n"
                  "print(sj.use_cpu_cores(), len(os.sched_getaffinity(0)))")
    assert out.split()[0] == out.split()[1]


def test_bad_counts_and_late_calls_are_refused():
    have = len(jax.devices("cpu"))  # the backends have started in this process
    assert sj.use_cpu_cores() == have and sj.use_cpu_cores(have) == have
    for bad in (0, -1, 2.5, True, "2"):
        with pytest.raises(ValueError, match=r"`count` = .* is not allowed: expected an "
                                             r"integer >= 1"):
            sj.use_cpu_cores(bad)
    with pytest.raises(ValueError, match=f"`count` = {have + 1} CPU devices is not allowed "
                                         f"here: JAX has already started with {have}. .*"
                                         f"JAX_NUM_CPU_DEVICES={have + 1}"):
        sj.use_cpu_cores(have + 1)


def test_cli_sweep_runs_a_chunk_per_core_with_the_numbers_of_one(tmp_path):
    """`ssm-jax sweep --cpu-devices 2` runs a chunk per core with the numbers of one core,
    and keeps its compiled programs on disk (a fresh process, as a user runs it)."""
    config, cache = tmp_path / "tiny.toml", tmp_path / "cache"
    config.write_text(TINY)
    stores = {}
    for devices in (1, 2):
        stores[devices] = tmp_path / f"on{devices}"
        done = subprocess.run(
            [sys.executable, "-m", "ssm_jax", "sweep", str(config), "--out",
             str(stores[devices]), "--max-batch", "2", "--cpu-devices", str(devices)],
            capture_output=True, text=True, timeout=300,
            env={**{k: v for k, v in os.environ.items() if k != "JAX_NUM_CPU_DEVICES"},
                 "SSM_JAX_CACHE_DIR": str(cache)})
        assert done.returncode == 0, done.stdout + done.stderr
        assert "asynchronously" not in done.stdout + done.stderr
        assert len(list(cache.iterdir())) > 0
    one, two = (sj.open_sweep(stores[d]) for d in (1, 2))
    assert len(set(one.chunk_device.values)) == 1 and len(set(two.chunk_device.values)) == 2
    for name in ("loss", "learning_time", "num_steps"):
        np.testing.assert_array_equal(one[name].values, two[name].values, err_msg=name)
    bad = subprocess.run([sys.executable, "-m", "ssm_jax", "sweep", str(config), "--out",
                          str(tmp_path / "never"), "--cpu-devices", "0"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "`--cpu-devices` = 0 is not allowed" in bad.stdout + bad.stderr
    assert not (tmp_path / "never").exists()
