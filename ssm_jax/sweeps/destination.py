"""Where a sweep's chunks go: a store folder with whether the sweep joins one already begun
(a resumed sweep, a later shard, another process) and which shard this process runs; or
nowhere, the results then assembled in memory."""

import dataclasses
from pathlib import Path

import jax
import numpy as np

from .store import SweepStore, check_store, read_manifest, stored_chunks


def _check_shard(shard, store) -> tuple[int, int]:
    """`shard` as (i, N), checked; (0, 1) for None."""
    if shard is None:
        return (0, 1)
    allowed = "expected (i, N) with integers 0 <= i < N, and a `store`"
    if (not isinstance(shard, (tuple, list)) or len(shard) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                       for v in shard)
            or not 0 <= shard[0] < shard[1] or store is None):
        raise ValueError(f"`shard` = {shard!r} is not allowed: {allowed}.")
    return int(shard[0]), int(shard[1])


@dataclasses.dataclass(frozen=True)
class Destination:
    """A sweep's store settings, checked.

    **Arguments:**

    - `path`: the store's folder, or None for results in memory.
    - `joining`: whether the store may already hold this sweep's chunks: resumed, a shard
      other than the first, or a process other than the first.
    - `shard`: (i, N): this process runs the chunks c with c mod N = i.
    """

    path: Path | None
    joining: bool
    shard: tuple[int, int]

    @classmethod
    def checked(cls, store, resume: bool, shard) -> "Destination":
        """The destination of `sweep(store=..., resume=..., shard=...)`, checked and (with a
        store) its folder checked before any compute.

        **Arguments:**

        - `store`: a folder, or None.
        - `resume`: continue a stopped sweep in `store`.
        - `shard`: (i, N) or None.

        **Returns:** a `Destination`. Raises `ValueError` naming the argument.
        """
        shard = _check_shard(shard, store)
        # Other processes and shards write into the same store: each may find it begun.
        joining = bool(resume) or shard != (0, 1) or jax.process_index() != 0
        path = None if store is None else check_store("store", store, joining)
        return cls(path, joining, shard)

    @property
    def process(self) -> tuple[int, int]:
        """(this process's index, the number of processes) over every shard's processes."""
        return (self.shard[0] * jax.process_count() + jax.process_index(),
                self.shard[1] * jax.process_count())

    def stored_chunk_size(self) -> int | None:
        """The chunk size of the sweep the store began, which a joining writer keeps."""
        manifest = read_manifest(self.path) if self.path is not None and self.joining else None
        return None if manifest is None else manifest["chunk_size"]

    def open(self, manifest: dict, coordinates: dict, describe) -> SweepStore | None:
        """The store, locked for writing (see `SweepStore`), or None without one.

        **Arguments:**

        - `manifest`, `coordinates`, `describe`: as for `SweepStore`.

        **Returns:** a `SweepStore` or None.
        """
        if self.path is None:
            return None
        return SweepStore(self.path, manifest, coordinates, describe, resume=self.joining,
                          shard=self.shard, process=(jax.process_index(), jax.process_count()))

    def done(self) -> set[int]:
        """The chunks the store holds, by any writer; none without a store."""
        return set() if self.path is None else stored_chunks(self.path)
