"""Members in lockstep (`vmap`): every step batched over the chunk, all waiting for the
slowest."""

import jax
import numpy as np

from ._base import ChunkOutput, chunk_size_for_memory
from .memberwise import AbstractMemberwise


class Vmap(AbstractMemberwise):
    """Members in lockstep (`jax.vmap` of `dynamics.run`): each step is one batched
    operation, and the chunk runs until its slowest member ends; for training, and for flows
    with events, on accelerators. Progress is reported when the chunk ends.

    **Arguments:**

    - `unroll`: as for `Map`.
    """

    unroll: bool = True
    name = "vmap"

    def over(self, member, batch, listener):
        return jax.vmap(member)(batch)

    def chunk_size(self, bytes_per_member: int, free_bytes: int, platform: str,
                   seconds_per_member: float | None = None) -> int:
        # A lockstep chunk takes about its slowest member's time, whatever its size.
        return chunk_size_for_memory(bytes_per_member, free_bytes)

    def waste(self, num_steps: np.ndarray, output: ChunkOutput) -> float:
        steps = np.asarray(num_steps, dtype=float)
        return float(1 - steps.mean() / steps.max()) if steps.size and steps.max() > 0 else 0.0
