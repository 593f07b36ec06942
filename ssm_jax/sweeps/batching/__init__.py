"""How a sweep batches the members of a chunk: one module per strategy, each owning its check
against the dynamics, its chunk size, its run (with progress) and the waste it reports.

- `Map()`: one member after another inside one compiled call (`lax.map`), the default on CPUs;
- `Vmap()`: in lockstep (`vmap`), for training and flows with events on accelerators;
- `Refill(lanes=...)`: gradient flows in refill lanes, the default on accelerators otherwise.

A new strategy is a final subclass of `AbstractBatching` in a file of its own; names for
configuration files and the command line are mapped here, in `batching_named`, and nowhere
else.
"""

from ._base import AbstractBatching as AbstractBatching, ChunkOutput as ChunkOutput
from .lanes import Refill as Refill
from .lockstep import Vmap as Vmap
from .sequential import Map as Map

BATCHINGS = {batching.name: batching for batching in (Map, Vmap, Refill)}
"""The batchings by their names in configuration files and on the command line."""


def batching_named(name: str) -> AbstractBatching | None:
    """The batching a configuration file or the command line names.

    **Arguments:**

    - `name`: "map", "vmap", "refill", or "auto" for the sweep's default (`default_batching`).

    **Returns:** the batching with its default settings, or None for "auto". Raises
    `ValueError` for any other name.
    """
    if name == "auto":
        return None
    if name not in BATCHINGS:
        raise ValueError(f"`batching` = {name!r} is not allowed: expected one of auto, "
                         f"{', '.join(BATCHINGS)}.")
    return BATCHINGS[name]()


def default_batching(dynamics, platform: str) -> AbstractBatching:
    """The batching a sweep takes unless told: `Map()` on CPUs (members one after another,
    unbatched matmuls, no lockstep), and on accelerators `Refill()` where it can run the
    dynamics (a flow without an event), else `Vmap()`.

    **Arguments:**

    - `dynamics`: the sweep's `Flow` or `Train`.
    - `platform`: the devices' platform ("cpu", "gpu", "tpu").

    **Returns:** an `AbstractBatching`.
    """
    if platform == "cpu":
        return Map()
    try:
        Refill().check(dynamics)
    except ValueError:
        return Vmap()
    return Refill()
