import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssm_jax as sj


def test_learning_time_interpolates_exactly_on_a_linear_curve():
    ts = jnp.linspace(0.0, 10.0, 11)
    progress = jnp.stack([ts / 10.0, ts / 5.0, jnp.zeros(11), jnp.ones(11)], axis=1)
    np.testing.assert_allclose(sj.learning_time(ts, progress),
                               [5.0, 2.5, np.nan, 0.0])
    # A curve that crosses, dips and crosses again: the first crossing counts.
    wiggle = jnp.array([0.0, 0.6, 0.2, 0.9])
    assert float(sj.learning_time(jnp.arange(4.0), wiggle)) == pytest.approx(5 / 6)


def test_class_means_match_numpy_and_ignore_padding():
    values = jnp.array([1.0, 2.0, 3.0, 10.0, 7.0])
    labels = jnp.array([0, 0, 1, 1, -1])
    np.testing.assert_allclose(sj.class_means(values, labels, 3), [1.5, 6.5, np.nan])


def test_mode_strengths_are_projections():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(3, 5))
    U, _, Vt = np.linalg.svd(rng.normal(size=(3, 5)), full_matrices=False)
    expected = [U[:, i] @ Z @ Vt[i] for i in range(3)]
    np.testing.assert_allclose(sj.mode_strengths(Z, U, Vt.T), expected)


def test_objective_metrics_by_hand():
    counts = np.array([2, 1])
    labels = sj.labels_from_counts(counts)
    model = sj.UFM(counts, 2, key=jax.random.key(0))
    outputs = np.array([[0.5, 0.1], [0.2, 0.4], [-0.3, 0.9]])
    model = eqx.tree_at(lambda m: m.H, model, jnp.asarray(outputs.T))
    model = eqx.tree_at(lambda m: m.W, model, jnp.eye(2))
    w = jnp.array([0.5, 2.0])
    obj = sj.Objective(labels, sj.losses.square, class_weights=w)
    m = obj.metrics(model)
    per_example = 0.5 * np.sum((outputs - np.eye(2)[labels]) ** 2, axis=1)
    np.testing.assert_allclose(m["class_accuracy"], [0.5, 1.0])
    np.testing.assert_allclose(m["class_output"], [0.35, 0.9])
    np.testing.assert_allclose(m["class_loss"], [per_example[:2].mean(), per_example[2]])
    np.testing.assert_allclose(m["loss"], np.sum(np.asarray(w)[labels] * per_example) / 3)
