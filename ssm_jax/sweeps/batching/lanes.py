"""Refill lanes: a chunk's gradient flows stepped by L lanes, each taking the next member as
its own ends, so that no member waits for another (`dynamics.refill`)."""

import equinox as eqx
import jax
import numpy as np

from ... import _validate
from ..._timing import timed_call
from ...dynamics import refill
from ...dynamics.flow import Flow
from ...dynamics.lane_layout import AbstractLaneLayout, Flat, check_layout
from ._base import AbstractBatching, ChunkOutput, chunk_size_for_memory, within_seconds

CPU_LANES = 16
"""Lanes on a CPU: batched steps gain little there, and few lanes keep the tail short."""
REFILL_CPU_CHUNK = 1024
"""Members per chunk on a CPU: 64 per lane of `CPU_LANES`, so the lanes' tail is short."""
SEGMENT_SECONDS = 1.0
"""With a progress callback, a chunk advances in segments of about this long."""


class Refill(AbstractBatching):
    """Gradient flows in refill lanes: `lanes` members step at once, each lane its own member,
    and a lane whose member ends takes the next one (`dynamics.refill`), so that no member
    waits for another; the default on accelerators for flows without an event. Each member's
    numbers are those of its own `Flow.run`. Progress is reported about every
    `SEGMENT_SECONDS`.

    **Arguments:**

    - `lanes`: members stepping at once; None: `CPU_LANES` on a CPU, a quarter of the chunk
      on an accelerator (wide enough to fill it, with several members per lane to refill
      from).
    - `layout`: how the lanes hold and step their members (`dynamics.lane_layout`): `Flat()`
      (one (L, n) state, the field's products ordered for fast kernels) or `Leaves()` (each
      leaf of the state its own array, as before `Flat`).
    """

    lanes: int | None = None
    layout: AbstractLaneLayout = Flat()
    name = "refill"

    def __check_init__(self):
        if self.lanes is not None:
            _validate.integer("lanes", self.lanes, minimum=1)
        check_layout(self.layout)

    def check(self, dynamics) -> None:
        if not isinstance(dynamics, Flow) or dynamics.event is not None:
            raise ValueError(f"`batching` = Refill(...) is not allowed with "
                             f"{dynamics.describe()}: refill lanes run gradient flows without "
                             "an event; expected Map() or Vmap().")

    def prepare(self, dynamics):
        return dynamics  # the lanes step explicit Runge-Kutta stages unrolled themselves

    def chunk_size(self, bytes_per_member: int, free_bytes: int, platform: str,
                   seconds_per_member: float | None = None) -> int:
        if platform == "cpu":  # lanes share the core: a member-step costs about what it does alone
            return within_seconds(REFILL_CPU_CHUNK, seconds_per_member)
        return chunk_size_for_memory(bytes_per_member, free_bytes)

    def num_lanes(self, num_members: int, platform: str) -> int:
        """The lanes of a chunk of `num_members` on `platform`, 1..num_members.

        **Arguments:**

        - `num_members`: members in the chunk.
        - `platform`: the device's platform.

        **Returns:** the number of lanes.
        """
        lanes = self.lanes
        if lanes is None:
            lanes = CPU_LANES if platform == "cpu" else num_members // 4
        return int(min(max(lanes, 1), num_members))

    def run(self, batch, static, dynamics, metrics, device, progress) -> ChunkOutput:
        params, objectives, _, _ = batch  # a flow draws nothing and takes no hyperparameters
        model_static, objective_static = static
        num_members = len(jax.tree_util.tree_leaves(params)[0])
        args = (dynamics, params, model_static, eqx.combine(objectives, objective_static),
                metrics)
        lanes = self.num_lanes(num_members, device.platform)
        if progress is None:  # one compiled call
            out, compile_s, run_s = timed_call(refill.refill_run, *args, num_lanes=lanes,
                                               layout=self.layout)
            return ChunkOutput(out.recorded, out.stats, compile_s, run_s,
                               float(out.lane_efficiency))
        state, compile_s, run_s = timed_call(refill.refill_start, *args, num_lanes=lanes,
                                             layout=self.layout)
        iterations = 32  # the first segment short, so that progress shows within seconds
        while int(state.members_done) < num_members:
            state, compile_t, run_t = timed_call(refill.refill_advance, state, iterations)
            compile_s, run_s = compile_s + compile_t, run_s + run_t
            progress(int(state.members_done))
            # The next segment sized from this one's pace.
            pace = SEGMENT_SECONDS / max(run_t, 1e-3)
            iterations = int(np.clip(iterations * pace, 8, 1 << 20))
        out, compile_t, run_t = timed_call(refill.refill_finish, state)
        return ChunkOutput(out.recorded, out.stats, compile_s + compile_t, run_s + run_t,
                           float(out.lane_efficiency))

    def waste(self, num_steps: np.ndarray, output: ChunkOutput) -> float:
        return 1.0 - output.lane_efficiency
