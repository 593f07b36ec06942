import importlib
import os
from pathlib import Path
import subprocess
import sys
import time

import equinox as eqx
import numpy as np
import pytest
import xarray as xr

import ssm_jax as sj

sweep_module = importlib.import_module("ssm_jax.sweeps.batching.memberwise")  # compiled chunks

sys.path.insert(0, str(Path(__file__).parent))
import sweep_problems as sp  # noqa: E402

HERE = Path(__file__).parent
METRICS = ("class_progress", "class_loss", "class_accuracy", "loss", "learning_time")


def _assert_same(a: xr.Dataset, b: xr.Dataset, rtol=0.0):
    for name in METRICS + ("num_steps", "status"):
        np.testing.assert_allclose(a[name].values, b[name].values, rtol=rtol, atol=0,
                                   equal_nan=True, err_msg=name)


@pytest.fixture(scope="module")
def reference():
    return sp.run(chunk_size=5)


def test_result_is_labelled_by_the_grid(reference):
    ds = reference
    assert ds.learning_time.dims == ("ratio", "power", "init_scale", "seed", "cls")
    assert list(ds.cls.values) == ["majority", "minority"]
    np.testing.assert_array_equal(ds.ratio.values, [1.0, 3.0, 8.0])
    assert np.all(ds.status.values == 0)
    ratio = ds.learning_time.sel(cls="minority") / ds.learning_time.sel(cls="majority")
    # ERM learns the minority later the larger R is; gamma = 1 (loss reading) reverses it.
    erm = ratio.sel(power=0.0).mean("seed").squeeze().values
    assert erm[0] == pytest.approx(1.0, abs=0.05) and erm[2] > erm[1] > 1.3
    assert float(ratio.sel(power=1.0, ratio=8.0).mean()) < 1.0
    assert {"version_jax", "git_revision", "config", "compile_seconds"} <= set(ds.attrs)


def test_padded_members_equal_unpadded_runs(reference):
    """Members with fewer examples are padded to the largest; each equals its own run."""
    for ratio in (1.0, 3.0):
        point = dict(ratio=ratio, power=1.0, init_scale=1e-2, seed=1)
        traj = sj.gradient_flow(*sp.ufm_problem(**point), t1=300.0, num_saves=12)
        member = reference.sel(point)
        progress = np.asarray(traj.metrics["class_progress"])
        grouped = np.stack([progress[:, g].mean(1) for g in sp.GROUPS.values()], -1)
        np.testing.assert_allclose(member.class_progress.values, grouped, rtol=1e-10)
        assert int(member.num_steps) == int(traj.stats["num_steps"])


@pytest.mark.parametrize("kwargs", [dict(chunk_size=1), dict(chunk_size=12),
                                    dict(chunk_size=4, batching=sj.sweeps.Vmap()),
                                    dict(chunk_size=5, order_by=lambda ratio, **_: -ratio)])
def test_chunking_order_and_batching_change_no_number(reference, kwargs):
    rtol = 1e-10 if isinstance(kwargs.get("batching"), sj.sweeps.Vmap) else 0.0
    _assert_same(sp.run(**kwargs), reference, rtol=rtol)


def test_one_compilation_for_the_whole_grid():
    before = eqx.debug.get_num_traces(sweep_module.run_members)
    ds = sj.sweep(sp.ufm_problem, sj.Grid(ratio=[1.0, 2.0, 5.0], power=[0.0, 0.3, 1.0],
                                           init_scale=[1e-3, 1e-2], seed=[3, 4]),
                  t1=50.0, num_saves=5, chunk_size=7)
    assert ds.sizes["chunk"] == 6
    assert eqx.debug.get_num_traces(sweep_module.run_members) - before == 1


def test_chunks_that_exhaust_memory_are_split(reference, monkeypatch):
    import jax

    original = sweep_module.run_members
    sizes = []

    def small_memory(member, shared, batch, *args):
        sizes.append(len(batch[-1]))
        if len(batch[-1]) > 2:
            raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory (simulated)")
        return original(member, shared, batch, *args)

    monkeypatch.setattr(sweep_module, "run_members", small_memory)
    _assert_same(sp.run(chunk_size=5), reference)
    assert max(sizes) == 5 and sizes.count(5) == 3 and set(sizes) <= {5, 3, 2, 1}


def test_vmap_waste_is_measured():
    ds = sj.sweep(sp.ufm_problem, sp.grid(), t1=300.0, num_saves=5, batching=sj.sweeps.Vmap(),
                  chunk_size=12)
    steps = ds.num_steps.values
    assert float(ds.chunk_waste[0]) == pytest.approx(1 - steps.mean() / steps.max())


def test_ssm_and_training_sweeps():
    ds = sj.sweep(sp.ssm_problem, sj.Grid(ratio=[1.0, 4.0], power=[0.0, 1.0], seed=[0]),
                  t1=200.0, num_saves=8)
    assert "mode_strength" in ds and np.all(ds.status.values == 0)
    rates = [0.05, 0.2]
    ds = sj.sweep(sp.lr_problem, sj.Grid(learning_rate=rates),
                  dynamics=sj.Train(sp.SGD, steps=40, record_every=10), seed=0)
    assert ds.loss.dims == ("learning_rate", "time")
    for lr in rates:
        model, objective, _ = sp.lr_problem(lr)
        import optax

        direct = sj.train(model, objective, optax.sgd(lr), steps=40, record_every=10)
        np.testing.assert_allclose(ds.loss.sel(learning_rate=lr).values,
                                   direct.metrics["loss"], rtol=1e-10)


def test_bad_input_stops_before_compute():
    with pytest.raises(ValueError, match="ratio"):
        sj.Grid(ratio=[])
    with pytest.raises(ValueError, match="ratio"):
        sj.Grid(ratio=[1.0, float("nan")])
    before = eqx.debug.get_num_traces(sweep_module.run_members)
    with pytest.raises(ValueError, match="ratio"):
        sj.sweep(sp.ufm_problem, sj.Grid(ratio=[2.0, 0.5], power=[0.0], init_scale=[1e-2],
                                          seed=[0]), t1=10.0)
    with pytest.raises(ValueError, match="`batching` = 'vmap' is not allowed: expected a "):
        sp.run(batching="vmap")  # names are for configuration files and the command line
    assert eqx.debug.get_num_traces(sweep_module.run_members) == before


def _python(code: str, env_extra=None, **kwargs):
    env = dict(os.environ, PYTHONPATH=str(HERE), **(env_extra or {}))
    return subprocess.Popen([sys.executable, "-c", code], env=env, cwd=HERE,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


def test_four_devices_give_the_numbers_of_one(tmp_path, reference):
    """... and, as these CPU devices were not started by `use_cpu_cores`, they dispatch
    asynchronously (which can hang): the sweep warns and says how to fix it."""
    code = f"""
import warnings, jax, sweep_problems as sp
assert len(jax.devices()) == 4 and jax.config.read("jax_cpu_enable_async_dispatch")
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    ds = sp.run(chunk_size=2)
print([str(w.message) for w in caught])
assert len(set(ds.chunk_device.values)) == 4, ds.chunk_device.values
ds.to_netcdf({str(tmp_path / "four.nc")!r})
"""
    proc = _python(code, {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"})
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert "dispatch computations asynchronously" in out and "use_cpu_cores" in out, out
    _assert_same(xr.load_dataset(tmp_path / "four.nc"), reference)


def test_two_processes_share_one_sweep(tmp_path, reference):
    store = tmp_path / "two.sweep"
    code = """
import sys, jax
jax.distributed.initialize("127.0.0.1:{port}", num_processes=2, process_id=int(sys.argv[1]))
import sweep_problems as sp
ds = sp.run(chunk_size=3, store={store!r})
print("merged" if ds is not None else "partial")
""".format(port=12000 + os.getpid() % 20000, store=str(store))
    procs = [subprocess.Popen([sys.executable, "-c", code, str(i)], cwd=HERE,
                              env=dict(os.environ, PYTHONPATH=str(HERE)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    chunks = sorted(p.name for p in (store / "done").glob("*.json"))
    assert chunks == [f"{i:06d}.json" for i in range(4)]
    merged = sj.open_sweep(store)
    _assert_same(merged, reference)


def test_killed_sweep_resumes_without_loss_or_rewrite(tmp_path, reference):
    store = tmp_path / "killed.sweep"
    code = f"""
import time, sweep_problems as sp
sp.run(chunk_size=2, store={str(store)!r}, predict=sp.predict,
       progress=lambda done, total: time.sleep(1.0))
"""
    proc = _python(code)
    chunks = store / "done"
    deadline = time.time() + 240
    while len(list(chunks.glob("*.json"))) < 2 and time.time() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.communicate()
    before = {p.name: p.stat().st_mtime_ns for p in chunks.glob("*.json")}
    assert 2 <= len(before) < 6
    with pytest.raises(ValueError, match="resume"):
        sp.run(chunk_size=2, store=store, predict=sp.predict)
    with pytest.raises(ValueError, match="differs in: chunk_size"):
        sp.run(chunk_size=3, store=store, predict=sp.predict, resume=True)
    with pytest.raises(ValueError, match="differs in: predictions"):
        sp.run(chunk_size=2, store=store, resume=True)
    with pytest.warns(UserWarning, match="took over the lock"):  # the killed process's
        resumed = sp.run(chunk_size=2, store=store, predict=sp.predict, resume=True)
    after = {p.name: p.stat().st_mtime_ns for p in chunks.glob("*.json")}
    assert len(after) == 6
    assert all(after[name] == mtime for name, mtime in before.items())  # none written twice
    _assert_same(resumed, reference)
    opened = sj.open_sweep(store)
    _assert_same(opened, reference)
    # The predictions travel with every chunk, those written before the kill included.
    for ds in (resumed, opened):
        assert ds.predicted_ratio.dims == ("ratio", "power", "init_scale", "seed")
        expected = (ds.ratio ** -ds.power).broadcast_like(ds.predicted_ratio)
        np.testing.assert_array_equal(ds.predicted_ratio,
                                      expected.transpose(*ds.predicted_ratio.dims))
