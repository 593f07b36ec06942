"""A resumable on-disk store for a sweep: a folder holding a manifest and one netCDF file per
finished chunk.

The folder is checked when the store is opened, before any compute, and made only when the
first chunk is written: a sweep that fails before its first chunk leaves nothing behind. Each
chunk is written to a temporary name and renamed into place, so a chunk file exists only once
it is complete: a killed or failed sweep loses at most the chunks in flight, and a resumed one
skips every chunk already on disk. Processes of a multi-host sweep write disjoint chunks into
the same folder, so no two writers ever share a file.
"""

import json
import os
from pathlib import Path
import threading

import xarray as xr

from .. import _validate
from .dataset import merge_chunks

_MANIFEST = "manifest.json"
_CHUNKS = "chunks"


def read_manifest(path) -> dict | None:
    """The manifest of the sweep stored at `path`.

    **Arguments:**

    - `path`: a sweep store's folder.

    **Returns:** the manifest as a dict, or None where `path` holds no sweep.
    """
    manifest_path = Path(path) / _MANIFEST
    return json.loads(manifest_path.read_text()) if manifest_path.is_file() else None


def stored_chunks(path) -> set[int]:
    """The chunks already written to the store at `path`, by any process.

    **Arguments:**

    - `path`: a sweep store's folder (it may not exist yet).

    **Returns:** a set of chunk indices.
    """
    return {int(p.stem) for p in (Path(path) / _CHUNKS).glob("*.nc")}


def read_chunks(path, name: str = "path") -> xr.Dataset:
    """Every chunk written to the store at `path`, concatenated along `run` in grid order;
    reading needs no write access.

    **Arguments:**

    - `path`: a sweep store's folder.
    - `name`: the parameter that gave the path, for the message.

    **Returns:** a dataset over `run` (`dataset.merge_chunks`); a `ValueError` where no chunk
    is written yet.
    """
    paths = sorted((Path(path) / _CHUNKS).glob("*.nc"))
    if not paths:
        raise ValueError(f"`{name}` = '{path}' holds no finished chunk yet.")
    return merge_chunks([xr.load_dataset(p, engine="netcdf4") for p in paths])


def check_store(name: str, path, resume: bool) -> Path:
    """Checks, without writing anything, that a sweep can be stored at `path`: a folder that
    can be written (or made), holding nothing, or a sweep to be resumed.

    **Arguments:**

    - `name`: the parameter that gave the path ("store" or "--out"), for the message.
    - `path`: the store's folder.
    - `resume`: whether a sweep already stored there may be continued.

    **Returns:** `path` as a `Path`; a `ValueError` naming `name`, the path and what is allowed
    otherwise.
    """
    path = _validate.output_folder(name, path, files=(_MANIFEST,))
    shown = f"`{name}` = '{path}'"
    if (path / _MANIFEST).is_file():
        if not resume:
            raise ValueError(f"{shown} already holds a sweep: pass resume=True (--resume) to "
                             "finish it, or choose a new folder.")
        chunks = path / _CHUNKS
        if chunks.exists() and not (chunks.is_dir() and os.access(chunks, os.W_OK | os.X_OK)):
            raise ValueError(f"{shown} is not allowed: its '{_CHUNKS}' folder cannot be "
                             "written; expected a sweep store whose chunks can be added.")
    elif path.is_dir() and any(path.iterdir()):
        raise ValueError(f"{shown} is not allowed: it holds files but no sweep "
                         f"({_MANIFEST}); expected an empty or new folder, or a sweep store.")
    return path


class SweepStore:
    """The folder `path` of one sweep, described by `manifest` (grid, dynamics, chunking).

    Opening a store checks the folder (`check_store`) and, where it holds a sweep already,
    that it is this one; nothing is written until the first chunk, which also writes the
    manifest. The processes of a multi-host sweep each open the store and write their own
    chunks; whichever writes first writes the manifest (they all hold the same).

    **Arguments:**

    - `path`: the folder; made with the first chunk if missing.
    - `manifest`: JSON values describing the sweep; a stored sweep must match it exactly.
    - `resume`: continue a sweep already stored at `path` (else one there is refused).
    - `name`: the parameter that gave `path`, for messages ("store", or "--out").
    """

    def __init__(self, path, manifest: dict, *, resume: bool = False, name: str = "store"):
        self.path = check_store(name, path, resume)
        self.chunks = self.path / _CHUNKS
        self.name = name
        try:
            self.manifest = json.loads(json.dumps(manifest, allow_nan=False))
        except (TypeError, ValueError) as error:
            raise ValueError(f"The sweep's description cannot be stored as JSON ({error}): "
                             "`metadata` must hold only dicts, lists, strings, finite numbers, "
                             "booleans and None.") from error
        self._check_same(read_manifest(self.path))
        self._lock = threading.Lock()
        self._made = False

    def _check_same(self, stored: dict | None) -> None:
        if stored is None or stored == self.manifest:
            return
        changed = sorted(k for k in set(stored) | set(self.manifest)
                         if stored.get(k) != self.manifest.get(k))
        raise ValueError(f"`{self.name}` = '{self.path}' holds a different sweep (differs in: "
                         f"{', '.join(changed)}): it cannot be resumed with these settings.")

    def _make(self) -> None:
        """The folder and the manifest, before the first chunk (or the manifest another
        process wrote meanwhile, checked)."""
        self.chunks.mkdir(parents=True, exist_ok=True)
        manifest_path = self.path / _MANIFEST
        if manifest_path.is_file():
            self._check_same(read_manifest(self.path))
        else:
            _atomic_write_text(manifest_path, json.dumps(self.manifest, indent=1))
        self._made = True

    def done(self) -> set[int]:
        """The chunks already written, by any process.

        **Returns:** a set of chunk indices.
        """
        return stored_chunks(self.path)

    def write(self, index: int, ds: xr.Dataset) -> None:
        """Writes chunk `index` under a temporary name and renames it into place; the first
        chunk also makes the folder and writes the manifest.

        **Arguments:**

        - `index`: the chunk's index.
        - `ds`: its dataset (`dataset.chunk_dataset`).

        **Returns:** nothing.
        """
        with self._lock:
            if not self._made:
                self._make()
        final = self.chunks / f"{index:06d}.nc"
        temporary = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        ds.to_netcdf(temporary, engine="netcdf4")
        os.replace(temporary, final)

    def read_all(self) -> xr.Dataset:
        """Every written chunk, concatenated along `run` in grid order.

        **Returns:** a dataset over `run` (`dataset.merge_chunks`).
        """
        return read_chunks(self.path, self.name)


def _atomic_write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
