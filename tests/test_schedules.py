"""Weight schedules: their values, checks, and objectives at a time (flows and discrete
training with a switch are held to their oracles in test_flow.py and test_train.py)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssm_jax as sj
from ssm_jax.schedules import ConstantWeights, RampedWeights, SwitchedWeights
from ssm_jax.sweeps import pad_examples

COUNTS = np.array([4, 2, 1])
LABELS = sj.labels_from_counts(COUNTS)
BEFORE, AFTER = np.ones(3), np.array([0.5, 1.0, 2.0])


def test_values_and_jump_times():
    switched = SwitchedWeights(BEFORE, AFTER, 2.0)
    np.testing.assert_array_equal(switched(1.999), BEFORE)
    np.testing.assert_array_equal(switched(2.0), AFTER)  # from the switch on: after
    np.testing.assert_array_equal(switched.jump_times(), [2.0])
    ramp = RampedWeights(BEFORE, AFTER, 1.0, 3.0)
    for t, fraction in [(0.0, 0.0), (1.0, 0.0), (1.5, 0.25), (3.0, 1.0), (9.0, 1.0)]:
        np.testing.assert_allclose(ramp(t), BEFORE + fraction * (AFTER - BEFORE), rtol=1e-15)
    np.testing.assert_array_equal(ramp.jump_times(), [1.0, 3.0])
    constant = ConstantWeights(AFTER)
    np.testing.assert_array_equal(constant(5.0), AFTER)
    assert constant.jump_times().shape == (0,)
    # Under vmap every member has its own switch.
    times = jnp.array([0.5, 1.5, 2.5])
    stacked = jax.vmap(lambda s: SwitchedWeights(BEFORE, AFTER, s))(times)
    values = jax.vmap(lambda sched: sched(1.0))(stacked)
    np.testing.assert_array_equal(values, [AFTER, BEFORE, BEFORE])


def test_objective_at_a_time():
    model = sj.UFM(COUNTS, 3, init_scale=0.5, key=jax.random.key(0))
    switched = sj.Objective(LABELS, sj.losses.cross_entropy,
                            class_weights=SwitchedWeights(BEFORE, AFTER, 2.0))
    for t, omega in [(1.0, BEFORE), (3.0, AFTER)]:
        constant = sj.Objective(LABELS, sj.losses.cross_entropy, class_weights=omega)
        assert float(switched.at(t)(model)) == pytest.approx(float(constant(model)), rel=1e-15)
        np.testing.assert_array_equal(switched.at(t).weights(), omega[LABELS])
    np.testing.assert_array_equal(switched.jump_times(), [2.0])
    plain = sj.Objective(LABELS, sj.losses.square)
    assert plain.jump_times().shape == (0,)
    assert float(plain.at(7.0)(model)) == float(plain(model))
    target = sj.TargetFit(sj.label_matrix(COUNTS))
    assert target.at(3.0) is target and target.jump_times().shape == (0,)
    # A time-dependent objective has no value without a time.
    with pytest.raises(ValueError, match=r"objective.at\(t\)"):
        switched(model)
    with pytest.raises(ValueError, match=r"objective.at\(t\)"):
        switched.metrics(model)


def test_padding_keeps_the_schedule():
    """A padded objective on a schedule runs the very same flow as the unpadded one."""
    model = sj.UFM(COUNTS, 3, init_scale=0.5, key=jax.random.key(1))
    objective = sj.Objective(LABELS, sj.losses.cross_entropy,
                             class_weights=RampedWeights(BEFORE, AFTER, 0.5, 1.5))
    padded = pad_examples(objective, 10)
    assert padded.labels.shape == (10,)
    assert eqx.tree_equal(padded.class_weights, objective.class_weights)
    ts = np.linspace(0.0, 3.0, 4)
    ours = sj.gradient_flow(model, objective, ts=ts)
    theirs = sj.gradient_flow(pad_examples(model, 10), padded, ts=ts)
    np.testing.assert_allclose(theirs.metrics["class_loss"], ours.metrics["class_loss"],
                               rtol=1e-13)
    np.testing.assert_allclose(theirs.final.W, ours.final.W, rtol=1e-13)
    assert int(theirs.stats["num_steps"]) == int(ours.stats["num_steps"])


@pytest.mark.parametrize("make, match", [
    (lambda: SwitchedWeights(BEFORE, AFTER, -1.0), "switch_time"),
    (lambda: SwitchedWeights(BEFORE, AFTER, np.inf), "switch_time"),
    (lambda: SwitchedWeights(BEFORE, AFTER, [1.0, 2.0]), "switch_time"),
    (lambda: SwitchedWeights(BEFORE, np.ones(2), 1.0), "after"),
    (lambda: SwitchedWeights(np.array([1.0, -1.0, 1.0]), AFTER, 1.0), "before"),
    (lambda: SwitchedWeights(BEFORE, np.zeros(3), 1.0), "after"),
    (lambda: SwitchedWeights(BEFORE, np.array([1.0, np.nan, 1.0]), 1.0), "after"),
    (lambda: SwitchedWeights(np.ones((3, 1)), AFTER, 1.0), "before"),
    (lambda: RampedWeights(BEFORE, AFTER, 2.0, 2.0), "start < end"),
    (lambda: RampedWeights(BEFORE, AFTER, 3.0, 1.0), "start < end"),
    (lambda: RampedWeights(BEFORE, AFTER, -1.0, 1.0), "start"),
    (lambda: ConstantWeights(np.ones(1)), "weights"),
    (lambda: sj.Objective(LABELS, sj.losses.square,
                          class_weights=SwitchedWeights(np.ones(4), np.ones(4), 1.0)),
     "class_weights"),
    # After the switch only the empty class keeps a weight: no example has one.
    (lambda: sj.Objective(LABELS, sj.losses.square, num_classes=4,
                          class_weights=SwitchedWeights(np.ones(4), [0, 0, 0, 1.0], 1.0)),
     "all zero"),
])
def test_bad_schedules_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_schedule_leaves_are_arrays():
    """Weights and times are array leaves: schedules differing only in them share a
    structure, so a sweep over them compiles once."""
    a = SwitchedWeights(BEFORE, AFTER, 1.0)
    b = SwitchedWeights(AFTER, BEFORE, 5.0)
    leaves = jax.tree_util.tree_leaves(a)
    assert all(eqx.is_array(leaf) for leaf in leaves) and len(leaves) == 3
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
