"""Members one after another inside one compiled call (`lax.map`)."""

import jax
import numpy as np

from ._base import ChunkOutput, chunk_size_for_memory, within_seconds
from .memberwise import AbstractMemberwise, member_done

MAP_CHUNK = 256
"""Members per chunk at most, a chunk being the unit of storing and resuming: they run one at
a time, so memory bounds a chunk only through the records it keeps until it ends."""


class Map(AbstractMemberwise):
    """Members one after another inside one compiled call (`lax.map`): no member waits for
    another, and each step's matmuls are unbatched; the default on CPUs. Progress is
    reported as each member ends.

    **Arguments:**

    - `unroll`: step an explicit Runge-Kutta solver with its stages unrolled (`Unrolled`):
      the same numbers up to round-off, in fewer, fused operations; False: diffrax's own step.
    """

    unroll: bool = True
    name = "map"

    def over(self, member, batch, listener):
        def one(args):
            out = member(args)
            # Called with the member's smallest output, so that it waits for the member's run.
            smallest = min(jax.tree_util.tree_leaves(out), key=lambda x: x.size)
            jax.debug.callback(member_done, listener, smallest)
            return out

        return jax.lax.map(one, batch)

    def chunk_size(self, bytes_per_member: int, free_bytes: int, platform: str,
                   seconds_per_member: float | None = None) -> int:
        # Members run one at a time, but a chunk's records are all kept until it ends.
        size = min(MAP_CHUNK, chunk_size_for_memory(bytes_per_member, free_bytes))
        return within_seconds(size, seconds_per_member)

    def waste(self, num_steps: np.ndarray, output: ChunkOutput) -> float:
        return 0.0  # no member waits for another
