"""A sweep's boundary: every bad argument or member refused before any compute, with nothing
written; failures before and after the first chunk; members that did not finish carry NaN."""

import importlib
import json
import os
from pathlib import Path
import sys

import diffrax
import equinox as eqx
import jax
import numpy as np
import pytest

import ssm_jax as sj

execute = importlib.import_module("ssm_jax.sweeps.execute")
memberwise = importlib.import_module("ssm_jax.sweeps.batching.memberwise")
design_checks = importlib.import_module("ssm_jax.sweeps.design_checks")

sys.path.insert(0, str(Path(__file__).parent))
import sweep_problems as sp  # noqa: E402

GRID = sj.Grid(ratio=[1.0, 4.0], power=[0.0], init_scale=[1e-2], seed=[0])


def _refused(call, *parts, store: Path | None = None):
    """`call` raises a ValueError whose message holds every part, before any compute and
    without making `store`."""
    before = eqx.debug.get_num_traces(memberwise.run_members)
    with pytest.raises(ValueError) as info:
        call()
    for part in parts:
        assert part in str(info.value), (part, str(info.value))
    assert eqx.debug.get_num_traces(memberwise.run_members) == before
    assert store is None or not store.exists()
    return str(info.value)


def _sweep(store=None, **kwargs):
    kwargs.setdefault("t1", 100.0)
    return sj.sweep(sp.ufm_problem, kwargs.pop("grid", GRID), num_saves=6, store=store,
                    **kwargs)


def test_numeric_settings_are_refused_before_compute(tmp_path):
    store = tmp_path / "never"
    for name, value in (("max_batch", 0), ("chunk_size", 0), ("pad_to", 0)):
        _refused(lambda n=name, v=value: _sweep(store, **{n: v}), f"`{name}` = {value}", ">= ",
                 store=store)
    for seed in (-1, 2**32):  # a key holds 32 bits: such seeds would repeat another's key
        _refused(lambda v=seed: _sweep(store, seed=v), f"`seed` = {seed}", "0..4294967295",
                 store=store)
    _refused(lambda: _sweep(store, pad_to=5), "`pad_to` = 5", "at least 20", store=store)
    _refused(lambda: _sweep(store, t1=None, dynamics=sj.Flow(10.0, rtol=-1e-3)),
             "`rtol` = -0.001", "(0.0, inf]")
    _refused(lambda: _sweep(store, t1=None, dynamics=sj.Flow(10.0, solver="Tsit5")),
             "`solver` = 'Tsit5' is not allowed", "diffrax.Tsit5()")
    _refused(lambda: _sweep(store, t1=None, dynamics=sj.Flow(10.0, solver=diffrax.Tsit5)),
             "`solver` = Tsit5 is not allowed: pass an instance, e.g. diffrax.Tsit5()")
    _refused(lambda: _sweep(store, dynamics=sj.Flow(10.0)), "`t1` = 100.0", "both given",
             store=store)
    _refused(lambda: _sweep(store, t1=None), "`t1`", "`dynamics`", store=store)
    _refused(lambda: _sweep(store, batching="pmap"), "`batching` = 'pmap'", "Vmap()",
             store=store)
    _refused(lambda: _sweep(store, devices=[]), "`devices` = []", "at least one", store=store)


def test_designs_too_large_for_memory_are_refused_before_compute(tmp_path, monkeypatch):
    store = tmp_path / "never"
    # A machine of 1 KiB: the records of both members in memory, or of one, do not fit.
    sysconf = os.sysconf
    monkeypatch.setattr(os, "sysconf", lambda name: {"SC_AVPHYS_PAGES": 1,
                                                     "SC_PAGE_SIZE": 1024}.get(name) or
                        sysconf(name))
    _refused(lambda: _sweep(), "The results of 2 members (1.59 KiB of records) do not fit in "
             "memory (1 KiB available): give a `store`")
    monkeypatch.setattr(execute, "free_bytes", lambda device: 2**10)
    _refused(lambda: _sweep(store, chunk_size=2), "One member needs about", "record fewer",
             store=store)
    _refused(lambda: _sweep(store), "One member needs about", store=store)


def test_training_settings_are_refused_before_compute(tmp_path):
    store = tmp_path / "never"

    def train(grid, **kwargs):
        return sj.sweep(sp.lr_problem, grid, dynamics=sj.Train(sp.SGD, steps=4, **kwargs),
                        store=store)

    _refused(lambda: train(sj.Grid(learning_rate=[0.1, -0.1])), "Grid point "
             "{'learning_rate': -0.1}", "`learning_rate` = -0.1", "(0.0, inf]", store=store)
    _refused(lambda: train(sj.Grid(learning_rate=[0.0])), "`learning_rate` = 0.0", store=store)
    # The problem has 4 classes of 8 and 2 examples: n = 20.
    _refused(lambda: train(sj.Grid(learning_rate=[0.1]), batch_size=21),
             "`batch_size` = 21", "1 <= batch_size <= n = 20", store=store)
    _refused(lambda: train(sj.Grid(learning_rate=[0.1]), batch_size=0), "`batch_size` = 0",
             ">= 1", store=store)


@pytest.mark.parametrize("groups, parts", [
    ({"majority": [0, 1], "minority": [2, 7]}, ["['minority']", "[2, 7]", "class 7 is out of "
                                                "range", "0..3", "4 classes"]),
    ({"majority": [0, 1], "minority": [1, 2]}, ["class 1 is already in group 'majority'",
                                                "each class in at most one group"]),
    ({"majority": [0, 1], "minority": []}, ["['minority'] = []", "non-empty"]),
    ({"majority": [0, 0.5]}, ["['majority'] = [0, 0.5]", "class indices"]),
    ({}, ["`class_groups` = {}", "a dict of group names"]),
    ([0, 1], ["`class_groups` = [0, 1]", "a dict of group names"]),
])
def test_class_groups_are_checked_against_the_members(tmp_path, groups, parts):
    store = tmp_path / "never"
    _refused(lambda: _sweep(store, class_groups=groups), *parts, store=store)


def test_class_groups_given_per_point_are_checked_at_each():
    def groups(ratio, **_):
        return {"majority": [0, 1], "minority": [2, 3] if ratio < 2 else [2, 4]}

    _refused(lambda: _sweep(class_groups=groups), "at grid point {'ratio': 4.0",
             "class 4 is out of range")


def test_members_are_checked_as_a_single_run_would_be(tmp_path):
    store = tmp_path / "never"

    def short_labels(ratio, power, init_scale, seed):
        model, objective = sp.ufm_problem(ratio, power, init_scale, seed)
        return sp.ufm_problem(8.0, power, init_scale, seed)[0], objective

    _refused(lambda: sj.sweep(short_labels, GRID, t1=10.0, store=store),
             "Grid point {'ratio': 1.0", "`model`", store=store)

    def classes(num_classes, seed):
        spec = sj.StepImbalance(num_classes, 2.0, 2)
        model = sj.UFM(spec.counts, 6, init_scale=1e-2, key=jax.random.key(seed))
        return model, sj.Objective(spec.labels, sj.losses.square)

    _refused(lambda: sj.sweep(classes, sj.Grid(num_classes=[3, 4], seed=[0]), t1=10.0,
                              store=store),
             "{'num_classes': 4, 'seed': 0}", "cannot share a batch", "{'num_classes': 3",
             "shape", store=store)
    _refused(lambda: sj.sweep(lambda **p: sp.ufm_problem(**p)[0], GRID, t1=10.0, store=store),
             "`make_problem` returned a UFM", "(model, objective)", store=store)
    _refused(lambda: sj.sweep(sp.ufm_problem, {"ratio": [1.0]}, t1=10.0), "`design` =",
             "ssm_jax.Grid")
    _refused(lambda: _sweep(order_by=lambda **p: "fast"), "`order_by`", "'fast'",
             "expected a number")
    _refused(lambda: _sweep(metadata={"when": object()}, store=store), "`metadata`",
             store=store)


def test_output_folders_are_refused_before_compute(tmp_path, read_only):
    file = tmp_path / "file.txt"
    file.write_text("keep me")
    _refused(lambda: _sweep(file), "`store` = '" + str(file), "is a file", "expected a folder")
    _refused(lambda: _sweep(file / "sub"), "is a file")
    assert file.read_text() == "keep me"
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    _refused(lambda: _sweep(other), "holds files but no sweep", "empty or new folder")
    assert [p.name for p in other.iterdir()] == ["notes.txt"]

    # A store to resume, and a folder that cannot be written.
    stored = tmp_path / "stored"
    (stored / "done").mkdir(parents=True)
    (stored / "manifest.json").write_text(json.dumps({"grid": GRID.to_dict(), "order": [0, 1],
                                                      "chunk_size": 2}))
    _refused(lambda: _sweep(stored), "already holds a sweep", "resume=True")
    locked = tmp_path / "read_only"
    locked.mkdir()
    read_only(stored, locked)
    _refused(lambda: _sweep(locked), f"`store` = '{locked}'", "not writable",
             "expected a folder that exists and is writable")
    _refused(lambda: _sweep(locked / "new"), f"its parent '{locked}' is not writable",
             store=locked / "new")
    _refused(lambda: _sweep(stored, resume=True), f"`store` = '{stored}'", "not writable")


def _failing_after(calls: int, monkeypatch):
    """The compiled chunk, failing from its `calls + 1`-th call on."""
    original = memberwise.run_members
    count = [0]

    def run_chunk(*args):
        count[0] += 1
        if count[0] > calls:
            raise RuntimeError("device lost (simulated)")
        return original(*args)

    monkeypatch.setattr(memberwise, "run_members", run_chunk)


def test_a_failure_before_the_first_chunk_leaves_nothing(tmp_path, monkeypatch):
    _failing_after(0, monkeypatch)
    store = tmp_path / "store"
    with pytest.raises(RuntimeError, match="simulated"):
        _sweep(store, chunk_size=1)
    assert not store.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(RuntimeError, match="simulated"):
        _sweep(empty, chunk_size=1)
    assert list(empty.iterdir()) == []  # the folder as it was


def test_a_failure_after_the_first_chunk_leaves_a_store_that_resume_finishes(tmp_path,
                                                                                monkeypatch):
    store = tmp_path / "store"
    grid = sj.Grid(ratio=[1.0, 3.0, 8.0], power=[0.0, 1.0], init_scale=[1e-2], seed=[0])
    with monkeypatch.context() as patch:
        _failing_after(1, patch)
        with pytest.raises(RuntimeError, match="simulated"):
            _sweep(store, grid=grid, chunk_size=2, class_groups=sp.GROUPS)
    # The chunk run first is the last of the queue's order, the costliest.
    assert [p.name for p in (store / "done").glob("*.json")] == ["000002.json"]
    resumed = _sweep(store, grid=grid, chunk_size=2, class_groups=sp.GROUPS, resume=True)
    whole = _sweep(grid=grid, chunk_size=2, class_groups=sp.GROUPS)
    for name in ("class_progress", "loss", "learning_time", "num_steps", "status"):
        np.testing.assert_array_equal(resumed[name].values, whole[name].values, err_msg=name)


def test_members_that_stop_early_carry_nan_not_plausible_numbers():
    ds = _sweep(t1=None, dynamics=sj.Flow(300.0, num_saves=6, max_steps=6),
                class_groups=sp.GROUPS)
    assert np.all(ds.status.values == 1)  # max_steps
    progress = ds.class_progress.values
    assert np.all(np.isfinite(progress[..., 0, :]))  # recorded before the stop
    assert np.all(np.isnan(progress[..., 1:, :]))  # diffrax leaves inf at the saves after it
    assert np.all(np.isnan(ds.learning_time.values))  # never reached: not 0
    for name in ds.data_vars:
        if np.issubdtype(ds[name].dtype, np.floating):
            assert not np.isinf(ds[name].values).any(), name

    # Gradient ascent to overflow: the diverged member has no finite value after it.
    ds = sj.sweep(sp.lr_problem, sj.Grid(learning_rate=[0.05, 1e3]),
                  dynamics=sj.Train(sp.SGD, steps=200, record_every=10))
    assert ds.status.sel(learning_rate=0.05) == 0
    assert ds.status.sel(learning_rate=1e3) == 2  # nonfinite
    diverged = ds.sel(learning_rate=1e3)
    assert np.isnan(diverged.loss.values[-1]) and not np.isinf(diverged.loss.values).any()
    assert np.isfinite(ds.loss.sel(learning_rate=0.05).values).all()
    assert ds.time.attrs["units"] == "steps" and ds.learning_time.attrs["units"] == "steps"


def test_the_sweep_dataset_is_described_in_cf_style():
    ds = _sweep(class_groups=sp.GROUPS)
    for name in ds.variables:
        assert "long_name" in ds[name].attrs, name
    assert ds.time.attrs["units"] == "1" and ds.chunk_run_seconds.attrs["units"] == "s"
    assert ds.status.attrs["flag_meanings"] == "ok max_steps nonfinite failed"
    assert ds.loss.attrs["long_name"].startswith("objective")
    assert ds.ratio.attrs["long_name"].startswith("imbalance ratio")
    assert ds.cls.attrs["long_name"] == "group of classes"
    np.testing.assert_array_equal(ds.group_size.values, 2)

