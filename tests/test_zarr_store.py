"""A sweep's zarr store: a resumed sweep leaves the bytes of an uninterrupted one, the writer
lock, shards merged into the single run, `ssm-jax merge`, and lazy opening."""

import json
from pathlib import Path
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner
import xarray as xr
import zarr

import ssm_jax as sj
from ssm_jax.cli import app
from ssm_jax.sweeps.lock import WriterLock
from ssm_jax.sweeps.store import stored_chunks

sys.path.insert(0, str(Path(__file__).parent))
import sweep_problems as sp  # noqa: E402

CHUNK = 3  # the 12 members of `sp.grid()` in 4 chunks
MEASURED = ("chunk_compile_seconds", "chunk_run_seconds", "chunk_device")


def _run(store, **kwargs):
    return sp.run(chunk_size=CHUNK, store=store, predict=sp.predict, **kwargs)


def _files(store: Path) -> dict[str, bytes]:
    """Every file of the zarr store: metadata, and each variable's chunk files."""
    root = store / "results.zarr"
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _invoke(*args) -> tuple[int, str]:
    """The exit code and the words of an `ssm-jax` command (a wide console: no wrapping)."""
    result = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "400"})
    return result.exit_code, " ".join(result.output.split())


def _assert_same_values(a: xr.Dataset, b: xr.Dataset) -> None:
    assert set(a.data_vars) == set(b.data_vars)
    for name in set(a.data_vars) - set(MEASURED):
        assert a[name].dims == b[name].dims, name
        assert a[name].values.tobytes() == b[name].values.tobytes(), name


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """An uninterrupted sweep into a store, and its result."""
    store = tmp_path_factory.mktemp("zarr") / "whole"
    return store, _run(store)


def test_the_store_is_chunked_like_the_plan_and_described(whole):
    store, ds = whole
    raw = xr.open_zarr(store / "results.zarr", chunks=None)
    assert raw.sizes["run"] == 12 and sorted(raw.run.values) == list(range(12))
    for name in raw.variables:  # CF-style, every variable and coordinate
        assert raw[name].attrs.get("long_name"), name
    assert raw.status.attrs["flag_meanings"] == "ok max_steps nonfinite failed"
    assert list(raw.status.attrs["flag_values"]) == [0, 1, 2, 3]
    assert raw.learning_time.attrs["units"] == "1"
    # The settings travel with each member.
    np.testing.assert_array_equal(raw.ratio.values, sp.grid().coordinates()["ratio"][raw.run])
    progress = zarr.open_array(store / "results.zarr" / "class_progress", mode="r")
    assert progress.chunks[0] == CHUNK
    assert [c.to_dict()["name"] for c in progress.compressors] == ["zstd"]
    assert not (store / "locks").exists()  # released
    # What the store gives back is what the sweep holds in memory without one.
    _assert_same_values(ds, _run(None))


def test_a_resumed_sweep_leaves_the_bytes_of_an_uninterrupted_one(whole, tmp_path):
    store, ds = whole
    killed = tmp_path / "killed"
    shutil.copytree(store, killed)
    # As a writer killed while writing chunk 2 leaves it: chunks 2 and 3 without a done marker,
    # chunk 2's data files half written, chunk 3's missing, and its lock. (The coordinates are
    # written with the empty store, which is renamed into place whole.)
    for chunk in (2, 3):
        (killed / "done" / f"{chunk:06d}.json").unlink()
    data = set(xr.open_zarr(killed / "results.zarr", chunks=None).data_vars)
    for path in (killed / "results.zarr").rglob("*"):
        parts = path.relative_to(killed / "results.zarr").parts
        if path.is_file() and parts[0] in data and parts[1:3] == ("c", "2"):
            path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
        if path.is_file() and parts[0] in data and parts[1:3] == ("c", "3"):
            path.unlink()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    (killed / "locks").mkdir()
    (killed / "locks" / "shard-0-of-1.lock").write_text(json.dumps(
        {"host": socket.gethostname(), "pid": int(gone.stdout), "shard": [0, 1]}))
    kept = {p: p.stat().st_mtime_ns for p in (killed / "done").iterdir()}
    assert stored_chunks(killed) == {0, 1}

    with pytest.warns(UserWarning, match=f"took over the lock shard-0-of-1.lock of process "
                                         f"{int(gone.stdout)}"):
        resumed = _run(killed, resume=True)
    assert _files(killed) == _files(store)  # every result variable, byte for byte
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # chunks 0 and 1 not redone
    assert stored_chunks(killed) == {0, 1, 2, 3} and not (killed / "locks").exists()
    _assert_same_values(resumed, ds)


def test_the_lock_refuses_a_second_writer(whole, tmp_path):
    store = tmp_path / "busy"
    holder = WriterLock(store, (0, 1))
    holder.acquire()
    with pytest.raises(ValueError) as refused:
        _run(store)
    words = " ".join(str(refused.value).split())
    for part in (f"`store` = '{store}' is being written by shard 0/1",
                 f"process {holder.holder['pid']}", socket.gethostname(),
                 "a second writer of one shard is refused"):
        assert part in words, words
    # A writer that counts shards otherwise could write the same chunks.
    with pytest.raises(ValueError, match="every writer of a store must count shards alike"):
        _run(store, shard=(1, 3))
    holder.release()
    assert list(store.iterdir()) == []  # the refused writers wrote nothing
    sharded = WriterLock(store, (0, 2))
    sharded.acquire()
    other = WriterLock(store, (1, 2))
    other.acquire()  # another shard of the same count is welcome
    other.release()
    sharded.release()
    assert not (store / "locks").exists()


def test_shards_run_into_one_store_and_merge_into_the_single_run(whole, tmp_path):
    store, ds = whole
    sharded = tmp_path / "sharded"
    assert _run(sharded, shard=(1, 2)) is None  # chunks 1 and 3; shard 0 is still to come
    assert stored_chunks(sharded) == {1, 3}
    code, words = _invoke("merge", sharded)
    assert code == 2, words
    assert "is unfinished: 2 of 4 chunks are missing (chunks 0, 2): rerun shard 0/2" in words
    with pytest.raises(ValueError, match="rerun shard 0/2"):
        sj.open_sweep(sharded)

    merged = _run(sharded, shard=(0, 2))  # the last shard to finish returns the whole
    assert _files(sharded) == _files(store)
    _assert_same_values(merged, ds)
    code, words = _invoke("merge", sharded)
    assert code == 0 and "12 members in 4 chunks, all done" in words, words
    _assert_same_values(sj.open_sweep(sharded), ds)


def test_shards_are_checked_before_compute(tmp_path):
    for shard in ((2, 2), (-1, 2), (0, 0), (0.0, 1), "0/2"):
        with pytest.raises(ValueError, match=r"`shard` = .* is not allowed: expected \(i, N\)"):
            _run(tmp_path / "never", shard=shard)
    with pytest.raises(ValueError, match="and a `store`"):
        _run(None, shard=(0, 2))
    for shard in ("2/2", "1", "a/b", "-1/2"):
        code, words = _invoke("sweep", tmp_path / "c.toml", "--out", tmp_path / "never",
                              "--shard", shard)
        assert code == 2 and f"`--shard` = '{shard}' is not allowed: expected I/N with " \
            "integers 0 <= I < N" in words, words
    assert not (tmp_path / "never").exists()
    code, words = _invoke("merge", tmp_path / "nothing")
    assert code == 2 and "holds no sweep" in words, words


def test_open_sweep_reads_a_variable_only_when_it_is_used(whole):
    store, ds = whole
    opened = sj.open_sweep(store)
    members = [v for v in opened.data_vars if "chunk" not in opened[v].dims]
    assert not any(opened[v].variable._in_memory for v in members if v != "num_steps")
    assert opened.class_progress.dims == ("ratio", "power", "init_scale", "seed", "time", "cls")
    _assert_same_values(opened, ds)
    point = dict(ratio=3.0, power=1.0, init_scale=1e-2, seed=1)
    np.testing.assert_array_equal(opened.loss.sel(point).values, ds.loss.sel(point).values)


def test_out_of_core_blocks_join_whole_chunks_and_keep_the_design_order(whole, monkeypatch):
    """Read as dask arrays in blocks of two store chunks, each member is still in its place."""
    pytest.importorskip("dask")
    from ssm_jax.sweeps import out_of_core

    store, ds = whole
    per_chunk = CHUNK * ds.loss.isel(ratio=0, power=0, init_scale=0, seed=0).nbytes
    monkeypatch.setattr(out_of_core, "BLOCK_BYTES", 2 * per_chunk)
    chunked = sj.open_sweep(store, chunks={})
    assert type(chunked.loss.data).__module__.startswith("dask")
    stored = xr.open_zarr(store / "results.zarr", chunks={})
    assert out_of_core._joined(stored.loss).data.chunks[0] == (2 * CHUNK, 2 * CHUNK)
    _assert_same_values(chunked.compute(), ds)


def test_size_buckets_store_each_chunk_in_its_own_rows(whole, tmp_path):
    """With size buckets (12 members in three sizes, chunks of 3 across the buckets' edges)
    every chunk is written to its own rows: the store holds the numbers of the one-bucket
    sweep, member by member."""
    _, ds = whole
    bucketed = _run(tmp_path / "buckets", min_bucket=1, max_buckets=3)
    assert stored_chunks(tmp_path / "buckets") == {0, 1, 2, 3}
    for name in ("loss", "class_progress", "learning_time", "num_steps"):
        np.testing.assert_allclose(bucketed[name].values, ds[name].values, rtol=1e-9,
                                   atol=1e-12, err_msg=name)
