"""A resumable on-disk store for a sweep: a folder holding a manifest and one netCDF file per
finished chunk.

Each chunk is written to a temporary name and renamed into place, so a chunk file exists only
once it is complete: a killed sweep loses at most the chunks in flight, and a resumed one skips
every chunk already on disk. Processes of a multi-host sweep write disjoint chunks into the
same folder, so no two writers ever share a file.
"""

import json
import os
from pathlib import Path
import time

import xarray as xr

from .dataset import merge_chunks

_MANIFEST = "manifest.json"


def read_manifest(path) -> dict | None:
    """The manifest of the sweep stored at `path`.

    **Arguments:**

    - `path`: a sweep store's folder.

    **Returns:** the manifest as a dict, or None where `path` holds no sweep.
    """
    manifest_path = Path(path) / _MANIFEST
    return json.loads(manifest_path.read_text()) if manifest_path.exists() else None


class SweepStore:
    """The folder `path` of one sweep, described by `manifest` (grid, dynamics, chunking).

    One process creates it (`create=True`); the others of a multi-host sweep wait for its
    manifest and check that they run the same sweep.

    **Arguments:**

    - `path`: the folder; made if missing, refused if it holds anything but this sweep.
    - `manifest`: JSON values describing the sweep; a stored sweep must match it exactly.
    - `resume`: continue a sweep already stored at `path` (else one there is refused).
    - `create`: whether this process writes the manifest; the others wait for it.
    - `timeout`: seconds to wait for another process's manifest.
    """

    def __init__(self, path, manifest: dict, *, resume: bool = False, create: bool = True,
                 timeout: float = 120.0):
        self.path = Path(path)
        self.chunks = self.path / "chunks"
        manifest_path = self.path / _MANIFEST
        if not create:
            deadline = time.monotonic() + timeout
            while not manifest_path.exists():
                if time.monotonic() > deadline:
                    raise TimeoutError(f"No sweep store appeared at {self.path}.")
                time.sleep(0.1)
            resume = True
        if manifest_path.exists():
            if not resume:
                raise ValueError(f"`store` = {str(self.path)!r} already holds a sweep: pass "
                                 "resume=True (--resume) to finish it, or choose a new path.")
            stored = json.loads(manifest_path.read_text())
            if stored != json.loads(json.dumps(manifest)):
                changed = sorted(k for k in set(stored) | set(manifest)
                                 if stored.get(k) != json.loads(json.dumps(manifest.get(k))))
                raise ValueError(f"`store` = {str(self.path)!r} holds a different sweep "
                                 f"(differs in: {', '.join(changed)}): it cannot be resumed "
                                 "with these settings.")
        elif self.path.exists() and any(self.path.iterdir()):
            raise ValueError(f"`store` = {str(self.path)!r} exists and is not a sweep store.")
        else:
            self.chunks.mkdir(parents=True, exist_ok=True)
            _atomic_write_text(manifest_path, json.dumps(manifest, indent=1))
        self.manifest = json.loads((self.path / _MANIFEST).read_text())

    def _chunk_path(self, index: int) -> Path:
        return self.chunks / f"{index:06d}.nc"

    def done(self) -> set[int]:
        """The chunks already written, by any process.

        **Returns:** a set of chunk indices.
        """
        return {int(p.stem) for p in self.chunks.glob("*.nc")}

    def write(self, index: int, ds: xr.Dataset) -> None:
        """Writes chunk `index` under a temporary name and renames it into place.

        **Arguments:**

        - `index`: the chunk's index.
        - `ds`: its dataset (`dataset.chunk_dataset`).

        **Returns:** nothing.
        """
        final = self._chunk_path(index)
        temporary = final.with_name(f".{final.name}.{os.getpid()}.tmp")
        ds.to_netcdf(temporary, engine="netcdf4")
        os.replace(temporary, final)

    def read_all(self) -> xr.Dataset:
        """Every written chunk, concatenated along `run` in grid order.

        **Returns:** a dataset over `run` (`dataset.merge_chunks`).
        """
        paths = sorted(self.chunks.glob("*.nc"))
        if not paths:
            raise ValueError(f"`store` = {str(self.path)!r} holds no finished chunk yet.")
        return merge_chunks([xr.load_dataset(p, engine="netcdf4") for p in paths])


def _atomic_write_text(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)

