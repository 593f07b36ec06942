"""A damaged sweep store: a chunk's file deleted, cut, changed or added behind its done marker,
a manifest that is not one, stray files in `done/`, and a disk that fills before the first
chunk is done. Each is named (which chunk, which file, what is wrong), and a resumed sweep
redoes exactly the damaged chunks, leaving the bytes of an untouched store."""

import builtins
import errno
import hashlib
import json
import os
from pathlib import Path
import shutil
import socket
import subprocess
import sys

import pytest
from typer.testing import CliRunner
import xarray as xr

import ssm_jax as sj
from ssm_jax.cli import app
from ssm_jax.sweeps import markers, store as store_module
from ssm_jax.sweeps.store import check_finished, damaged_chunks, stored_chunks

sys.path.insert(0, str(Path(__file__).parent))
import sweep_problems as sp  # noqa: E402

CHUNK = 3  # the 12 members of `sp.grid()` in 4 chunks
MEASURED = ("chunk_compile_seconds", "chunk_run_seconds", "chunk_device")


def _run(store, **kwargs):
    return sp.run(chunk_size=CHUNK, store=store, **kwargs)


def _files(store: Path) -> dict[str, bytes]:
    root = store / "results.zarr"
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _marker_times(store: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (store / "done").iterdir()}


def _merge(store) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["merge", str(store)], env={"COLUMNS": "400"})
    return result.exit_code, " ".join(result.output.split())


def _assert_same_values(a: xr.Dataset, b: xr.Dataset) -> None:
    assert set(a.data_vars) == set(b.data_vars)
    for name in set(a.data_vars) - set(MEASURED):
        assert a[name].values.tobytes() == b[name].values.tobytes(), name


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """An untouched sweep's store, and its result."""
    store = tmp_path_factory.mktemp("damage") / "whole"
    return store, _run(store)


@pytest.fixture
def copy(whole, tmp_path):
    """A copy of the untouched store, to damage."""
    shutil.copytree(whole[0], tmp_path / "store")
    return tmp_path / "store"


def test_a_marker_records_every_file_of_its_chunk(whole):
    store, _ = whole
    marker = json.loads((store / "done" / "000002.json").read_text())
    written = {name for name in xr.open_zarr(store / "results.zarr").data_vars}
    assert {key.split("/")[0] for key in marker["files"]} == written
    for key, record in marker["files"].items():
        assert key.split("/")[1:3] == ["c", "2"], key  # chunk 2's own files
        path = store / "results.zarr" / key
        if record is None:  # only fill values (every member ok): zarr writes no file
            assert not path.exists() and key == "status/c/2"
        else:
            assert record == {"size": path.stat().st_size,
                              "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert damaged_chunks(store) == {} and stored_chunks(store) == {0, 1, 2, 3}


def _delete(path: Path) -> str:
    path.unlink()
    return "is missing"


def _cut(path: Path) -> str:
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[: size // 2])
    return f"has {size // 2} bytes, expected {size}"


def _flip(path: Path) -> str:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return "has the wrong checksum (sha256)"


def _add(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00" * 16)
    return "should not exist (the chunk wrote only fill values)"


@pytest.mark.parametrize("damage, key", [(_delete, "loss/c/2/0"), (_cut, "loss/c/2/0"),
                                         (_flip, "class_progress/c/2/0/0"),
                                         (_add, "status/c/2")])
def test_a_damaged_chunk_is_named_and_redone_alone(whole, copy, damage, key):
    store, ds = whole
    why = f"results.zarr/{key} " + damage(copy / "results.zarr" / key)
    assert damaged_chunks(copy) == {2: why}
    # Sizes are checked on every look at the store; a changed byte takes the checksums.
    assert stored_chunks(copy, checksums=True) == {0, 1, 3}
    assert stored_chunks(copy) == ({0, 1, 2, 3} if damage is _flip else {0, 1, 3})
    shown = f"1 of 4 chunks are damaged (chunk 2 ({why})): resume the sweep (resume=True, " \
            "--resume) to finish it, which redoes the damaged chunks."
    with pytest.raises(ValueError) as damaged:
        sj.open_sweep(copy)
    assert shown in " ".join(str(damaged.value).split())
    code, words = _merge(copy)
    assert code == 2 and shown in words, words

    kept = {n: t for n, t in _marker_times(copy).items() if n != "000002.json"}
    with pytest.warns(UserWarning, match=r"1 damaged chunks are redone: chunk 2 \("):
        resumed = _run(copy, resume=True)
    assert {n: t for n, t in _marker_times(copy).items() if n != "000002.json"} == kept
    assert _files(copy) == _files(store)  # every file of the zarr store, byte for byte
    assert damaged_chunks(copy) == {}
    _assert_same_values(resumed, ds)


@pytest.mark.parametrize("text, why", [
    ("", "is not valid JSON (the file is empty)"),
    ('{"design": "grid", "gr', "is not valid JSON (Unterminated string"),
    ("\xff\xfe", "is not valid JSON ("),
    ("[]", "is not a sweep's manifest (no member `order` and `chunk_size`)"),
])
def test_a_broken_manifest_is_named(copy, text, why):
    (copy / "manifest.json").write_text(text, encoding="latin-1")
    expected = "expected the manifest a sweep writes; remove the folder"
    for resume in (True, False):
        with pytest.raises(ValueError) as refused:
            _run(copy, resume=resume)
        words = str(refused.value)
        assert words.startswith(f"`store` = '{copy}': manifest.json {why}"), words
        assert expected in words, words
    with pytest.raises(ValueError, match=f"`path` = '{copy}': manifest.json"):
        sj.open_sweep(copy)
    code, words = _merge(copy)
    assert code == 2 and f"`STORE` = '{copy}': manifest.json {why}" in words, words
    assert "Traceback" not in words


def test_stray_files_in_done_are_ignored_with_a_warning_and_a_cut_marker_is_redone(whole,
                                                                                   copy):
    store, ds = whole
    for stray in ("notes.txt", "abc.json", "000099.json", "0000001.json"):
        (copy / "done" / stray).write_text("{}")
    marker = copy / "done" / "000003.json"
    marker.write_bytes(marker.read_bytes()[:20])
    (copy / "done" / "000001.json").write_bytes((copy / "done" / "000000.json").read_bytes())
    with pytest.warns(UserWarning) as warned:
        damaged = damaged_chunks(copy)
    words = " ".join(str(w.message) for w in warned)
    for stray in ("notes.txt", "abc.json", "000099.json", "0000001.json"):
        assert f"done/{stray}' is ignored: `done/` holds the markers of a store's chunks, " \
               "NNNNNN.json for the chunks 0 to 3; remove it." in words
    assert sorted(damaged) == [1, 3]
    assert damaged[1] == ("its marker done/000001.json is not this chunk's marker (expected "
                          "the keys chunk, with index 1, writer and files)")
    assert damaged[3].startswith("its marker done/000003.json cannot be read (Expecting value")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match=r"2 of 4 chunks are "
                                                  r"damaged \(chunk 1 \(its marker"):
        check_finished(copy)

    kept = {n: t for n, t in _marker_times(copy).items() if n in ("000000.json", "000002.json")}
    with pytest.warns(UserWarning) as warned:  # and the stray files again
        resumed = _run(copy, resume=True)
    assert any("2 damaged chunks are redone: chunk 1 (" in str(w.message) for w in warned)
    assert {n: _marker_times(copy)[n] for n in kept} == kept
    assert _files(copy) == _files(store)
    _assert_same_values(resumed, ds)
    assert (copy / "done" / "notes.txt").exists()  # ignored, not removed


class _FullDisk:
    """`open` where the disk is full for some files: writing one raises ENOSPC, as the
    operating system does, once the file is made."""

    def __init__(self, full):
        self.full = full

    def __call__(self, file, mode="r", *args, **kwargs):
        opened = builtins.open(file, mode, *args, **kwargs)
        if "w" in mode and self.full(Path(file)):
            opened.close()
            raise OSError(errno.ENOSPC, "No space left on device", str(file))
        return opened


def _full_template(monkeypatch):
    template = store_module.SweepStore._template

    def filled(self, ds, where):
        template(self, ds, where)  # the hidden folder, half made
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_module.SweepStore, "_template", filled)


def _full_data(monkeypatch):
    to_zarr = xr.Dataset.to_zarr

    def filled(self, *args, region=None, **kwargs):
        if region is not None:
            raise OSError(errno.ENOSPC, "No space left on device")
        return to_zarr(self, *args, **kwargs)

    monkeypatch.setattr(xr.Dataset, "to_zarr", filled)


@pytest.mark.parametrize("where", ["manifest", "template", "data", "marker"])
def test_a_disk_full_before_the_first_chunk_leaves_nothing(tmp_path, monkeypatch, where):
    if where in ("manifest", "marker"):
        full = ((lambda p: p.parent.name == "done") if where == "marker"
                else (lambda p: p.name.startswith(".manifest.json")))
        monkeypatch.setattr(markers, "open", _FullDisk(full), raising=False)
    else:
        (_full_template if where == "template" else _full_data)(monkeypatch)
    new, empty = tmp_path / "new" / "store", tmp_path / "empty"
    empty.mkdir()
    for store in (new, empty):
        with pytest.raises(OSError, match="No space left on device"):
            _run(store)
    assert not (tmp_path / "new").exists()
    assert list(empty.iterdir()) == []  # as it was, hidden folders included


def test_a_writer_killed_while_making_the_store_leaves_no_folder_for_long(tmp_path):
    """SIGKILL cannot be caught: the hidden folder a writer killed while making the zarr
    store left (after its manifest) is removed by the next writer on this host, which makes
    the store; one of a live writer stays."""
    store, host = tmp_path / "store", socket.gethostname()
    _run(store)
    shutil.rmtree(store / "results.zarr")
    for marker in (store / "done").iterdir():
        marker.unlink()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead, alive = (store / f".results.zarr.{host}.{pid}" for pid in (gone.pid, os.getppid()))
    for folder in (dead, alive):
        folder.mkdir()
        (folder / "zarr.json").write_text("{}")
    _run(store, resume=True)
    assert not dead.exists() and alive.exists()
    assert stored_chunks(store) == {0, 1, 2, 3}
