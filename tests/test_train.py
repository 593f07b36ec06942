import jax
import numpy as np
import optax
import pytest

import ssm_jax as sj

SPEC = sj.StepImbalance(3, 4.0, 2)


def _problem(loss=sj.losses.cross_entropy):
    model = sj.UFM(SPEC.counts, 4, init_scale=0.3, key=jax.random.key(0))
    objective = sj.Objective(SPEC.labels, loss, class_weights=sj.class_weights(SPEC.counts, 1.0))
    return model, objective


def test_full_size_minibatch_is_full_batch():
    model, objective = _problem()
    opt = optax.sgd(0.2, momentum=0.9)
    full = sj.train(model, objective, opt, steps=40, record_every=10)
    batch = sj.train(model, objective, opt, steps=40, record_every=10,
                     batch_size=SPEC.counts.sum(), key=jax.random.key(5))
    np.testing.assert_allclose(batch.metrics["loss"], full.metrics["loss"], rtol=1e-12)


def test_minibatch_is_deterministic_for_a_key_and_varies_between_keys():
    model, objective = _problem()
    opt = optax.adam(0.05)
    run = lambda seed: sj.train(model, objective, opt, steps=30, record_every=30,  # noqa: E731
                                batch_size=4, key=jax.random.key(seed)).metrics["loss"]
    np.testing.assert_array_equal(run(1), run(1))
    assert not np.allclose(run(1), run(2))


def test_minibatch_gradient_is_unbiased():
    """The mean over many batches of the minibatch objective is the full objective."""
    model, objective = _problem()
    keys = jax.random.split(jax.random.key(0), 4000)
    values = jax.vmap(lambda k: objective.minibatch(k, 3)(model))(keys)
    assert float(values.mean()) == pytest.approx(float(objective(model)), rel=0.02)


def test_training_decreases_the_loss_and_fits():
    model, objective = _problem(sj.losses.square)
    traj = sj.train(model, objective, optax.sgd(0.5), steps=2000, record_every=100)
    assert traj.status == "ok"
    assert np.all(np.diff(np.asarray(traj.metrics["loss"])) <= 1e-12)
    np.testing.assert_allclose(traj.metrics["class_accuracy"][-1], 1.0)


def test_objective_bad_input():
    with pytest.raises(ValueError, match="labels"):
        sj.Objective(np.array([0, 1, 3]), sj.losses.square, num_classes=3)
    with pytest.raises(ValueError, match="labels"):
        sj.Objective(np.array([0, 1, -1]), sj.losses.square)
    with pytest.raises(ValueError, match="class_weights"):
        sj.Objective(SPEC.labels, sj.losses.square, class_weights=np.ones(2))
    with pytest.raises(ValueError, match="class_weights"):
        sj.Objective(SPEC.labels, sj.losses.square, class_weights=np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="example_weights"):
        sj.Objective(SPEC.labels, sj.losses.square, example_weights=np.ones(3))
    with pytest.raises(ValueError, match="l2"):
        sj.Objective(SPEC.labels, sj.losses.square, l2=-1.0)
    with pytest.raises(ValueError, match="loss"):
        sj.Objective(SPEC.labels, lambda z, y: z)
    with pytest.raises(ValueError, match="labels"):
        sj.Objective(np.array([1, 0, -1]), sj.losses.logistic)
    with pytest.raises(ValueError, match="target"):
        sj.TargetFit(np.ones(3))
    with pytest.raises(ValueError, match="key"):
        sj.train(*_problem(), optax.sgd(0.1), steps=10, batch_size=2)


def test_switch_at_step_s_is_s_steps_then_the_new_weights():
    """Discrete deferred re-weighting: GD whose weights switch at step s is s GD steps with
    the first weights, then GD with the second, from where it stopped."""
    model = sj.UFM(SPEC.counts, 4, init_scale=0.3, key=jax.random.key(1))
    before, after = np.ones(3), np.asarray(sj.class_weights(SPEC.counts, 1.0))
    objective = lambda w: sj.Objective(SPEC.labels, sj.losses.cross_entropy,  # noqa: E731
                                       class_weights=w)
    s, steps, opt = 30, 50, optax.sgd(0.3)
    switched = sj.train(model, objective(sj.SwitchedWeights(before, after, s)), opt, steps,
                        record_every=10)
    first = sj.train(model, objective(before), opt, s, record_every=10)
    second = sj.train(first.final, objective(after), opt, steps - s, record_every=10)
    np.testing.assert_allclose(switched.final.W, second.final.W, rtol=1e-12)
    np.testing.assert_allclose(switched.final.H, second.final.H, rtol=1e-12)
    # Records at step k are those of the objective at k: before up to s - 1, after from s.
    np.testing.assert_allclose(switched.metrics["loss"][:3], first.metrics["loss"][:3],
                               rtol=1e-12)
    np.testing.assert_allclose(switched.metrics["loss"][3:], second.metrics["loss"],
                               rtol=1e-12)
    # Not a constant weighting in disguise: the switch changed the path.
    plain = sj.train(model, objective(before), opt, steps, record_every=10)
    assert not np.allclose(plain.final.W, switched.final.W, rtol=1e-6)
