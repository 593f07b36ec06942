"""A resumable on-disk store for a sweep, which several writers (devices, processes, shards of a
job array) fill chunk by chunk. The store is a folder:

- `manifest.json`: the sweep's description; a writer with other settings is refused.
- `results.zarr`: one zarr (v3) store, compressed with zstd, of every member's results over
  `run` in the plan's order (`run` holds grid indices; the grid's axes are coordinates over
  it), with CF-style attributes on every variable. Its zarr chunks along `run` are the plan's
  chunks: each plan chunk writes its own chunk files, never shared by two writers. All in it
  follows from the sweep's settings: a resumed sweep leaves the bytes of an uninterrupted one.
- `done/NNNNNN.json`: written (atomically) once chunk NNNNNN's data are flushed, with its own
  numbers (size, waste, and the measurements that differ from run to run: compile and run
  seconds, device), its writer, and the size and checksum of each file it wrote
  (`markers`). Resuming redoes exactly the chunks without a marker whose files check.
- `locks/`: one lock file per writer (host and pid; `lock.WriterLock`): two writers never
  write one shard.

The first chunk writes the manifest and the empty zarr store: a sweep that fails before a chunk
is done leaves nothing behind (what its writer made is removed again)."""

import itertools
import json
import math
import os
from pathlib import Path
import shutil
import socket
import threading
import warnings

import numpy as np
import xarray as xr

from .. import _validate
from .lock import LOCKS as _LOCKS, WriterLock, remove_dead_writers_folders
from .markers import atomic_write_text, damage_listing, record_files, verify_markers, write_marker

_MANIFEST = "manifest.json"
_RESULTS = "results.zarr"
_DONE = "done"
_ANEW = ("remove the folder (its chunks cannot be read without the manifest) or choose another "
         "to run the sweep anew")


def read_manifest(path, name: str = "path") -> dict | None:
    """The manifest of the sweep stored at the folder `path`, checked for form.

    **Arguments:**

    - `path`: the store's folder.
    - `name`: the parameter that gave the path, for messages.

    **Returns:** the manifest as a dict, or None where `path` holds no sweep; a `ValueError`
    naming the file where it cannot be read, is not JSON, or lacks the member order and the
    chunk size.
    """
    manifest_path = Path(path) / _MANIFEST
    if not manifest_path.is_file():
        return None
    shown = f"`{name}` = '{path}': {_MANIFEST}"
    try:
        text = manifest_path.read_bytes()
        manifest = json.loads(text)
    except OSError as error:
        raise ValueError(f"{shown} cannot be read ({error.strerror}): expected the manifest a "
                         "sweep writes, readable.") from None
    except ValueError as error:  # a decoding error too
        why = "the file is empty" if not text.strip() else str(error)
        raise ValueError(f"{shown} is not valid JSON ({why}): expected the manifest a sweep "
                         f"writes; {_ANEW}.") from None
    if not (isinstance(manifest, dict) and isinstance(manifest.get("order"), list)
            and type(manifest.get("chunk_size")) is int and manifest["chunk_size"] >= 1):
        raise ValueError(f"{shown} is not a sweep's manifest (no member `order` and "
                         f"`chunk_size`): expected the manifest a sweep writes; {_ANEW}.")
    return manifest


def stored_chunks(path, checksums: bool = False, name: str = "path") -> set[int]:
    """The chunks already written to the store at `path` (it may not exist yet), by any writer.

    **Arguments:**

    - `path`: the store's folder.
    - `checksums`: whether to read every file of the chunks (else their sizes are checked).
    - `name`: the parameter that gave the path, for messages.

    **Returns:** a set of chunk indices: those with a whole done marker whose files check (see
    `markers`). A resumed sweep redoes every other chunk.
    """
    return set(_scan(path, name, checksums)[1])


def damaged_chunks(path, checksums: bool = True, name: str = "path") -> dict[int, str]:
    """The chunks of the store at `path` whose done marker is there but cannot be read, or
    whose files are missing, of the wrong size or (with `checksums`) changed.

    **Arguments:**

    - `path`: the store's folder.
    - `checksums`: whether to read every file of the done chunks (else sizes only).
    - `name`: the parameter that gave the path, for messages.

    **Returns:** {chunk: what is wrong, naming the files}, by chunk.
    """
    return _scan(path, name, checksums)[2]


def _scan(path, name: str, checksums: bool) -> tuple[dict | None, dict[int, dict], dict[int, str]]:
    """The manifest, the done chunks' markers and the damaged chunks' reasons."""
    manifest = read_manifest(path, name)
    if manifest is None:
        return None, {}, {}
    return manifest, *verify_markers(Path(path), _total(manifest), checksums)


def _total(manifest: dict) -> int:
    return math.ceil(len(manifest["order"]) / manifest["chunk_size"])


def check_finished(path, name: str = "path", consolidate: bool = False,
                   checksums: bool = True) -> dict:
    """Checks that every chunk of the sweep stored at `path` is done and whole (its files
    there, of their sizes and, with `checksums`, their checksums); with `consolidate`, also
    gathers the zarr store's metadata into its root (`ssm-jax merge`, after shards).

    **Arguments:**

    - `path`: a sweep store's folder.
    - `name`: the parameter that gave the path, for the message.
    - `consolidate`: whether to consolidate (needs write access).
    - `checksums`: whether to read every file of the store's chunks.

    **Returns:** the manifest; a `ValueError` where `path` holds no sweep, or naming the
    damaged chunks (which file, what is wrong) and saying how many are missing and which
    shards (or which command) redo them.
    """
    manifest, markers, damaged = _scan(path, name, checksums)
    if manifest is None:
        raise ValueError(f"`{name}` = '{path}' holds no sweep (no {_MANIFEST}): expected a store.")
    total = _total(manifest)
    missing = sorted(set(range(total)) - set(markers) - set(damaged))
    if not missing and not damaged:
        if consolidate:
            _consolidate(Path(path) / _RESULTS)
        return manifest
    layouts = {(m["writer"]["shard"][1], m["writer"]["processes"]) for m in markers.values()}
    if len(layouts) == 1 and next(iter(layouts))[0] > 1:
        count, processes = layouts.pop()
        shards = sorted({c % (count * processes) // processes for c in {*missing, *damaged}})
        todo = "rerun shard " + ", ".join(f"{i}/{count}" for i in shards) + " (--shard I/N)"
    else:
        todo = "resume the sweep (resume=True, --resume) to finish it"
    parts = []
    if damaged:
        parts.append(f"{len(damaged)} of {total} chunks are damaged ({damage_listing(damaged)})")
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
        parts.append(f"{len(missing)} of {total} chunks are missing (chunks {shown})")
    redo = ", which redoes the damaged chunks" if damaged else ""
    raise ValueError(f"The sweep at '{path}' is unfinished: {' and '.join(parts)}: {todo}"
                     f"{redo}.")


def open_store(path, name: str = "path") -> xr.Dataset:
    """The results stored at `path`, opened lazily: nothing is read until it is used.

    **Arguments:**

    - `path`: a sweep store's folder.
    - `name`: the parameter that gave the path, for the message.

    **Returns:** a dataset over `run` in the order the members ran (`run` holds grid indices,
    the grid's axes are coordinates over it), with the done chunks' own numbers as
    `chunk_<name>` variables over `chunk` (as `dataset.merge_chunks` gives them); a
    `ValueError` where no chunk is done yet.
    """
    markers = _scan(path, name, checksums=False)[1]
    if not markers:
        raise ValueError(f"`{name}` = '{path}' holds no finished chunk yet.")
    ds = xr.open_zarr(Path(path) / _RESULTS, consolidated=True, chunks=None)
    chunks = [markers[c]["chunk"] for c in sorted(markers)]
    return ds.assign({f"chunk_{key}": ("chunk", np.array([c[key] for c in chunks]))
                      for key in chunks[0]})


def _consolidate(path: Path) -> None:
    """The zarr store's metadata gathered into its root, so that it opens with one read."""
    with warnings.catch_warnings():  # zarr notes that v3 does not specify consolidation yet
        warnings.simplefilter("ignore")
        _zarr().consolidate_metadata(path)


def check_store(name: str, path, resume: bool) -> Path:
    """Checks, without writing anything, that a sweep can be stored at `path`: a folder that
    can be written (or made), holding nothing (but writers' locks), or a sweep to be resumed.

    **Arguments:**

    - `name`: the parameter that gave the path ("store" or "--out"), for the message.
    - `path`: the store's folder.
    - `resume`: whether a sweep already stored there may be continued.

    **Returns:** `path` as a `Path`; a `ValueError` naming `name`, the path and what is allowed
    otherwise.
    """
    path = _validate.output_folder(name, path, files=(_MANIFEST,))
    shown = f"`{name}` = '{path}'"
    if read_manifest(path, name) is not None:
        if not resume:
            raise ValueError(f"{shown} already holds a sweep: pass resume=True (--resume) to "
                             "finish it, or choose a new folder.")
        for part in (p for p in (_RESULTS, _DONE, _LOCKS) if (path / p).exists()):
            if not ((path / part).is_dir() and os.access(path / part, os.W_OK | os.X_OK)):
                raise ValueError(f"{shown} is not allowed: its '{part}' folder cannot be "
                                 "written; expected a sweep store whose chunks can be added.")
    elif path.is_dir() and any(p.name != _LOCKS for p in path.iterdir()):
        raise ValueError(f"{shown} is not allowed: it holds files but no sweep "
                         f"({_MANIFEST}); expected an empty or new folder, or a sweep store.")
    return path


class SweepStore:
    """The folder `path` of one sweep, described by `manifest`, as one writer sees it: opening
    checks the folder (`check_store`) and that a sweep stored there is this one, and takes the
    writer's lock until `close`; a writer joining a stored sweep then checks every done chunk's
    checksums and removes the markers of damaged ones, which are thus redone. The first chunk
    writes the manifest and the empty zarr store (whichever writer comes first: all write the
    same). `close` removes what it made where no chunk got done and no other writer runs.

    **Arguments:**

    - `path`: the folder; made if missing.
    - `manifest`: JSON values describing the sweep, with the member `order` and `chunk_size`;
      a stored sweep must match it exactly.
    - `coordinates`: {axis name: value per grid index}, stored over `run`.
    - `describe`: one member's dataset (from `dataset.chunk_dataset`) -> the same labelled
      (`dataset.label_by_grid`), whose CF-style attributes the store keeps.
    - `resume`: continue a sweep already stored at `path` (else one there is refused).
    - `shard`: (i, N): this writer runs shard i of N; `process`: (p, P), this process among
      the P of each shard. The lock is the writer's: shard i * P + p of N * P.
    - `name`: the parameter that gave `path`, for messages ("store", or "--out").
    """

    def __init__(self, path, manifest: dict, coordinates: dict, describe, *,
                 resume: bool = False, shard: tuple[int, int] = (0, 1),
                 process: tuple[int, int] = (0, 1), name: str = "store"):
        self.path = check_store(name, path, resume)
        self.results = self.path / _RESULTS
        self.name = name
        try:
            self.manifest = json.loads(json.dumps(manifest, allow_nan=False))
        except (TypeError, ValueError) as error:
            raise ValueError(f"The sweep's description cannot be stored as JSON ({error}): "
                             "`metadata` must hold only dicts, lists, strings, finite numbers, "
                             "booleans and None.") from error
        self._check_same(read_manifest(self.path, name))
        self.coordinates = coordinates
        self.describe = describe
        self.writer = {"shard": list(shard), "processes": process[1]}
        self._made_lock = threading.Lock()  # one writer's threads make the store once
        self._made = False
        self._created: list[Path] = []  # parts of the store this writer made, deepest last
        self._new = [p for p in (self.path, *self.path.parents) if not p.exists()]
        self.lock = WriterLock(self.path, (shard[0] * process[1] + process[0],
                                           shard[1] * process[1]), name)
        self.lock.acquire()
        if resume:
            try:
                self._drop_damaged()
            except BaseException:
                self.lock.release()
                raise

    def _drop_damaged(self) -> None:
        """Removes the markers of the chunks whose files do not check (checksums included), so
        that the writer of each one's shard redoes it, in place."""
        damaged = damaged_chunks(self.path, name=self.name)
        for index in damaged:
            (self.path / _DONE / f"{index:06d}.json").unlink(missing_ok=True)
        if damaged:
            # Level 3: the line that opened the `SweepStore`, past `_drop_damaged`.
            warnings.warn(f"`{self.name}` = '{self.path}': {len(damaged)} damaged chunks are "
                          f"redone: {damage_listing(damaged)}.", stacklevel=3)

    def _check_same(self, stored: dict | None) -> None:
        if stored is None or stored == self.manifest:
            return
        changed = sorted(k for k in set(stored) | set(self.manifest)
                         if stored.get(k) != self.manifest.get(k))
        raise ValueError(f"`{self.name}` = '{self.path}' holds a different sweep (differs in: "
                         f"{', '.join(changed)}): it cannot be resumed with these settings.")

    def close(self) -> None:
        """Releases the lock, and removes a folder it made where no sweep was written.

        **Returns:** nothing.
        """
        self.lock.release()
        done = self.path / _DONE
        if (self._created and not any(p for p in done.glob("*") if not p.name.startswith("."))
                and not any((self.path / _LOCKS).glob("*.lock"))):
            for made in reversed(self._created):  # failed before any chunk: leave nothing
                shutil.rmtree(made) if made.is_dir() else made.unlink(missing_ok=True)
        if not (self.path / _MANIFEST).exists():
            for folder in self._new:  # deepest first; one holding others' files stays
                try:
                    folder.rmdir()
                except OSError:
                    break

    def write(self, index: int, ds: xr.Dataset) -> None:
        """Writes chunk `index` into its own region of the zarr store, then its done marker;
        the first chunk also writes the manifest and the empty store.

        **Arguments:**

        - `index`: the chunk's index.
        - `ds`: its dataset (`dataset.chunk_dataset`); its `chunk_*` attributes go to the marker.

        **Returns:** nothing.
        """
        with self._made_lock:
            if not self._made:
                self._make(ds)
        start = index * self.manifest["chunk_size"]
        ds.drop_vars(list(ds.coords)).drop_attrs().to_zarr(
            self.results, region={"run": slice(start, start + ds.sizes["run"])}, mode="r+",
            consolidated=False)
        chunk = {k[len("chunk_"):]: np.asarray(v).item() for k, v in ds.attrs.items()
                 if k.startswith("chunk_")}
        # Plan chunk `index` is zarr chunk `index` along `run`, whole along the other axes.
        keys = [f"{name}/{metadata.encode_chunk_key((index, *rest))}"
                for name, (metadata, grid) in self._chunking.items()
                for rest in itertools.product(*map(range, grid))]
        write_marker(self.path / _DONE / f"{index:06d}.json", {
            "chunk": chunk, "writer": self.writer | self.lock.holder,
            "files": record_files(self.results, keys)})

    def _make(self, ds: xr.Dataset) -> None:
        """The manifest and the empty zarr store, before the first chunk (or those another
        writer made meanwhile, checked)."""
        manifest_path = self.path / _MANIFEST
        if manifest_path.is_file():
            self._check_same(read_manifest(self.path, self.name))
        else:
            atomic_write_text(manifest_path, json.dumps(self.manifest, indent=1))
            self._created.append(manifest_path)
        if not (self.path / _DONE).is_dir():
            (self.path / _DONE).mkdir()
            self._created.append(self.path / _DONE)
        if not self.results.exists():  # made aside and renamed: a store is whole or absent
            remove_dead_writers_folders(self.path, _RESULTS)
            aside = self.path / f".{_RESULTS}.{socket.gethostname()}.{os.getpid()}"
            try:
                self._template(ds, aside)
                os.rename(aside, self.results)
                self._created.append(self.results)
            except BaseException:  # a full disk, say: no hidden half store stays behind
                shutil.rmtree(aside, ignore_errors=True)
                if not self.results.is_dir():
                    raise  # else another writer's came first; it is the same
        group = _zarr().open_group(self.results, mode="r")
        self._chunking = {name: (group[name].metadata, group[name].cdata_shape[1:])
                          for name in ds.data_vars}
        self._made = True

    def _template(self, ds: xr.Dataset, where: Path) -> None:
        """The variables of `ds` (a chunk) at the sweep's full size, with their attributes and
        no data yet; the member order and the grid's axes written over `run`."""
        order = np.asarray(self.manifest["order"])
        described = self.describe(ds.isel(run=slice(0, 1)))
        empty = ds.isel(run=slice(0, 0)).drop_attrs().assign_coords(
            {name: ("run", np.asarray(values)[:0]) for name, values in self.coordinates.items()})
        empty = empty.assign_coords({name: empty[name].astype(object) for name in empty.coords
                                     if empty[name].dtype.kind == "U"})  # variable-length
        for name in empty.variables:
            empty[name].attrs = dict(described[name].attrs) if name in described else {}
        empty["run"].attrs = {"long_name": "index of the member in the grid (row-major)"}
        empty.attrs = {k: v for k, v in described.attrs.items()
                       if k in ("config", "python", "device") or k.startswith("version_")}
        encoding = {name: {"chunks": (self.manifest["chunk_size"],) + v.shape[1:],
                           "compressors": [_zarr().codecs.ZstdCodec(level=3)]}
                    for name, v in empty.variables.items() if v.dims[:1] == ("run",)}
        empty.to_zarr(where, mode="w", zarr_format=3, consolidated=False, encoding=encoding)
        group = _zarr().open_group(where, mode="r+")
        for _, array in group.arrays():
            if array.metadata.dimension_names[:1] == ("run",):
                array.resize((order.size,) + array.shape[1:])
        group["run"][:] = order
        for name, values in self.coordinates.items():
            group[name][:] = np.asarray(values)[order]
        _consolidate(where)


def _zarr():
    """zarr, imported when a store is used: the package imports (and sweeps without a store
    run) where it is not installed."""
    import zarr

    return zarr
