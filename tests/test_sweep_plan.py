"""The plan of a sweep, alone: order, chunking, processes, devices and resuming."""

import numpy as np
import pytest

from ssm_jax.sweeps import Map, Refill, Vmap
from ssm_jax.sweeps.batching._base import MAX_CHUNK
from ssm_jax.sweeps.batching.lanes import REFILL_CPU_CHUNK
from ssm_jax.sweeps.batching.sequential import MAP_CHUNK
from ssm_jax.sweeps.plan import make_plan, padded_size


def test_members_run_in_key_order_ties_in_grid_order():
    plan = make_plan(6, [3.0, 1.0, 2.0, 1.0, 0.0, 3.0], 6)
    assert plan.order == (4, 1, 3, 2, 0, 5)
    assert make_plan(4, None, 4).order == (0, 1, 2, 3)
    with pytest.raises(ValueError, match="order_keys"):
        make_plan(4, [1.0, 2.0], 4)


def test_chunks_cut_the_order_and_the_last_is_filled():
    plan = make_plan(10, list(range(10, 0, -1)), 4)
    assert plan.chunk_size == 4
    assert plan.chunks == ((9, 8, 7, 6), (5, 4, 3, 2), (1, 0))
    np.testing.assert_array_equal(plan.filled(2), [1, 0, 0, 0])
    np.testing.assert_array_equal(plan.filled(0), [9, 8, 7, 6])
    assert make_plan(10, None, 4, max_batch=3).chunk_size == 3
    assert make_plan(5, None, 100).chunk_size == 5
    assert make_plan(5, None, 100).chunks == ((0, 1, 2, 3, 4),)


def test_processes_share_disjoint_chunks_and_devices_take_turns():
    plans = [make_plan(22, None, 2, process_index=p, process_count=2) for p in range(2)]
    assert len(plans[0].chunks) == 11
    assert plans[0].share == (0, 2, 4, 6, 8, 10) and plans[1].share == (1, 3, 5, 7, 9)
    # Each process's devices take its chunks from one queue, the costliest (last) first.
    assert plans[0].queue == (10, 8, 6, 4, 2, 0) and plans[1].queue == (9, 7, 5, 3, 1)
    dealt = [c for plan in plans for c in plan.queue]
    assert sorted(dealt) == list(range(11))


def test_a_resumed_plan_skips_the_chunks_done():
    plan = make_plan(10, None, 3)
    assert plan.todo == (0, 1, 2, 3) and plan.members_done == 0
    resumed = plan.skipping({1, 3})
    assert resumed.chunks == plan.chunks
    assert resumed.todo == (0, 2)
    assert resumed.queue == (2, 0)
    assert resumed.members_done == 3 + 1
    other = make_plan(10, None, 3, process_index=1, process_count=2).skipping({1, 2})
    assert other.todo == (3,) and other.members_done == 6


def test_each_batching_sizes_its_chunks():
    assert Vmap().chunk_size(1000, 10_000, "gpu") == 5  # half the free memory
    assert Vmap().chunk_size(1000, 100, "gpu") == 1
    assert Vmap().chunk_size(1, 10**12, "gpu") == MAX_CHUNK
    assert Map().chunk_size(1000, 10**9, "cpu") == MAP_CHUNK
    assert Map().chunk_size(1000, 10_000, "cpu") == 5  # the chunk's records must fit too
    assert Refill().chunk_size(1000, 10_000, "cpu") == REFILL_CPU_CHUNK
    assert Refill().chunk_size(1000, 10_000, "gpu") == 5
    assert Refill().num_lanes(64, "gpu") == 16 and Refill(lanes=100).num_lanes(64, "cpu") == 64


def test_padded_size():
    assert padded_size([3, 7, 5]) == 7
    assert padded_size([3, 7, 5], pad_to=9) == 9
    with pytest.raises(ValueError, match="pad_to"):
        padded_size([3, 7, 5], pad_to=6)
