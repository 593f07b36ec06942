"""A sweep of `Points`, built vectorized and run in refill lanes, against the same members
built one by one and run one after another (`lax.map`): the same numbers, member-level
progress, and the lane efficiency recorded."""

import numpy as np
import optax
import pytest

import ssm_jax as sj
from ssm_jax.sweeps.config import ConfiguredProblem

PROBLEM = ConfiguredProblem(fixed=tuple(sorted(dict(
    model="ufm", num_classes=4, minority_size=2, dim=5, init_scale=0.05).items())))
DESIGN = sj.Points(ratio=[1.0, 6.0, 2.5, 4.0, 1.5, 3.0, 5.0, 2.0],
                   power=[0.0, 1.0, 0.5, 0.0, 1.0, 0.5, 0.0, 1.0], seed=np.arange(8))
FLOW = sj.Flow(200.0, num_saves=10)


def _predict(ratio, power, seed):  # vectorized: arrays in, one value per member out
    return {"predicted_ratio": np.asarray(ratio, float) ** -np.asarray(power, float)}


MAP_PROGRESS = []


@pytest.fixture(scope="module")
def one_by_one():
    return sj.sweep(PROBLEM, DESIGN, dynamics=FLOW, batching=sj.sweeps.Map(), chunk_size=8,
                    progress=lambda done, total: MAP_PROGRESS.append(done))


def test_map_reports_each_member_as_it_ends(one_by_one):
    """One compiled call for the chunk of 8, and still a report per member, in order."""
    assert sorted(set(MAP_PROGRESS)) == list(range(9)) and MAP_PROGRESS == sorted(MAP_PROGRESS)


def test_refill_lanes_give_each_members_numbers(one_by_one):
    calls = []
    ds = sj.sweep(PROBLEM, DESIGN, dynamics=FLOW, vectorized=True,
                  batching=sj.sweeps.Refill(lanes=3), chunk_size=8,
                  order_by=lambda ratio, **_: -np.asarray(ratio),
                  predict=_predict, progress=lambda done, total: calls.append((done, total)))
    assert ds.class_progress.dims[:2] == ("point", "time")
    np.testing.assert_array_equal(ds.ratio.values, DESIGN.coordinates()["ratio"])
    for name in ("loss", "class_progress", "class_accuracy"):
        np.testing.assert_allclose(ds[name].values, one_by_one[name].values, rtol=1e-10,
                                   atol=1e-14, err_msg=name)
    for name in ("num_steps", "num_accepted_steps", "num_rejected_steps", "status"):
        np.testing.assert_array_equal(ds[name].values, one_by_one[name].values, err_msg=name)
    np.testing.assert_allclose(ds.predicted_ratio.values, DESIGN.coordinates()["ratio"]
                               ** -DESIGN.coordinates()["power"])
    # Progress by member, not by chunk, ending with all done; the tail of 3 lanes is short.
    assert calls[-1] == (8, 8) and [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert ds.attrs["batching"] == "refill"
    steps = ds.num_steps.values
    assert steps.sum() / (3 * np.ceil(steps.sum() / 3)) >= ds.attrs["lane_efficiency"] > 0.6
    assert float(ds.chunk_waste.values[0]) == pytest.approx(1 - ds.attrs["lane_efficiency"])


def test_vectorized_order_and_predict_are_called_once_with_arrays():
    seen = []

    def order_by(**settings):
        seen.append({k: np.shape(v) for k, v in settings.items()})
        return "slow"

    with pytest.raises(ValueError, match="`order_by` returned 'slow'"):
        sj.sweep(PROBLEM, DESIGN, dynamics=FLOW, vectorized=True, order_by=order_by)
    assert seen == [{"ratio": (8,), "power": (8,), "seed": (8,)}]
    with pytest.raises(ValueError, match="`predict` returned"):
        sj.sweep(PROBLEM, DESIGN, dynamics=FLOW, vectorized=True,
                 predict=lambda **s: {"r": [1.0, 2.0]})


def test_refill_is_refused_where_it_cannot_run():
    train = sj.Train(optax.sgd(0.1), steps=5)
    with pytest.raises(ValueError, match=r"`batching` = Refill\(...\) is not allowed"):
        sj.sweep(PROBLEM, DESIGN, dynamics=train, batching=sj.sweeps.Refill())
    with pytest.raises(ValueError, match="`lanes` = 0 is not allowed"):
        sj.sweeps.Refill(lanes=0)
    with pytest.raises(ValueError, match="`layout` = 'flat' is not allowed"):
        sj.sweeps.Refill(layout="flat")
    # A bad setting is refused from the design's arrays, before anything is traced.
    bad = sj.Points(ratio=[2.0, 0.5], power=[0.0, 1.0])
    with pytest.raises(ValueError, match="`ratio` = 0.5 at point 1"):
        sj.sweep(PROBLEM, bad, dynamics=FLOW, vectorized=True)

