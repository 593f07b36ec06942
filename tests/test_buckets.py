"""Size buckets: members padded per bucket of similar size, not to the sweep's largest, with
one compilation per bucket and the same numbers as padding everything to the largest."""

import functools
import importlib

import equinox as eqx
import jax
import numpy as np
import pytest

import ssm_jax as sj
from ssm_jax.dynamics import objective_metrics
from ssm_jax.sweeps.execute import ChunkRunner
from ssm_jax.sweeps.plan import make_plan, size_buckets
from ssm_jax.sweeps.problem import as_problem
from ssm_jax.sweeps.problems import imbalance_problem, num_examples

execute = importlib.import_module("ssm_jax.sweeps.batching.memberwise")


def test_buckets_are_bounded_and_hold_their_members():
    sizes = np.random.default_rng(0).integers(3, 2000, 500)
    for max_buckets in (1, 4, 8):
        tops, member = size_buckets(sizes, max_buckets=max_buckets)
        assert 1 <= tops.size <= max_buckets and np.all(np.diff(tops) > 0)
        assert np.all(sizes <= tops[member])
        assert tops[-1] == sizes.max()
        # each bucket's size is that of its largest member: no padding beyond it
        assert all(tops[b] == sizes[member == b].max() for b in range(tops.size))
    # unmerged, a bucket spans one rung of the ladder: its members lie within the growth
    tops, member = size_buckets(sizes, max_buckets=1000, growth=1.5)
    assert all(tops[b] / sizes[member == b].min() < 1.5 for b in range(tops.size))
    with pytest.raises(ValueError, match="`max_buckets` = 0 is not allowed"):
        size_buckets(sizes, max_buckets=0)


def test_merging_buckets_pads_least_work_first():
    # rungs of 1.25 hold {4}, {5}, {10, 12}, {26, 28}; one merge: 4 -> 5 costs least (1 example)
    tops, member = size_buckets([4, 5, 10, 12, 26, 28], max_buckets=3)
    np.testing.assert_array_equal(tops, [5, 12, 28])
    np.testing.assert_array_equal(member, [0, 0, 1, 1, 2, 2])


def test_chunks_are_cut_every_chunk_size_in_bucket_then_cost_order():
    """Chunk c is members c * chunk_size onwards of the order (its rows of a store, whose zarr
    chunks it fills alone); one across a bucket's edge is padded to the larger bucket."""
    sizes = [28, 4, 12, 5, 26, 10, 4, 27]
    keys = [0.0, 5.0, 1.0, 3.0, 2.0, 0.5, 4.0, 1.0]
    plan = make_plan(8, keys, 2, num_examples=sizes, max_buckets=3)
    assert plan.order == (3, 6, 1, 5, 2, 0, 7, 4)  # buckets 5, 5, 5, 12, 12, 28, 28, 28
    assert plan.chunks == ((3, 6), (1, 5), (2, 0), (7, 4))
    assert [plan.padded_size(c) for c in range(4)] == [5, 12, 28, 28]
    plan = make_plan(8, keys, 3, num_examples=sizes, max_buckets=3)
    assert plan.chunks == ((3, 6, 1), (5, 2, 0), (7, 4))
    np.testing.assert_array_equal(plan.filled(2), [7, 4, 4])
    assert make_plan(8, keys, 2).padded_size(0) is None  # no sizes: the runner's own pad_to


def test_one_compilation_per_bucket_and_the_numbers_of_padding_to_the_largest():
    design = {"ratio": np.array([13.0, 1.0, 1.5, 12.0]), "seed": np.arange(4)}
    fixed = {"model": "ufm", "num_classes": 2, "minority_size": 2, "dim": 3}
    make_problem = functools.partial(imbalance_problem, init_scale=0.3, **fixed)
    sizes = num_examples(**fixed, **design)  # 28, 4, 5, 26
    plan = make_plan(4, None, 2, num_examples=sizes, max_buckets=2)
    assert plan.bucket_sizes == (5, 28) and plan.chunks == ((1, 2), (0, 3))
    runner = ChunkRunner(as_problem(make_problem), design, int(sizes.max()),
                         sj.Flow(t1=0.7, num_saves=4), objective_metrics, sj.sweeps.Map(),
                         vectorized=True)
    device = jax.devices()[0]
    before = eqx.debug.get_num_traces(execute.run_members)
    bucketed = [runner(plan.filled(c), device, plan.padded_size(c)) for c in range(2)]
    assert eqx.debug.get_num_traces(execute.run_members) - before == 2
    for members, out in zip(plan.chunks, bucketed, strict=True):
        largest = runner(np.asarray(members), device)  # padded to 28, as without buckets
        for name in ("loss", "class_progress"):
            np.testing.assert_allclose(out.recorded[name], largest.recorded[name], rtol=1e-10,
                                       atol=0, err_msg=name)
        np.testing.assert_array_equal(out.stats["num_steps"], largest.stats["num_steps"])
    assert eqx.debug.get_num_traces(execute.run_members) - before == 2  # 28 was compiled
