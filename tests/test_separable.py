"""Separable Gaussian data, the linear classifier and the ReLU MLP, and SeparableMetrics."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ssm_jax import losses
from ssm_jax.analytic.separable import max_margin
from ssm_jax.data.separable import (
    augment_bias,
    gaussian_blobs,
    importance_weights,
    mean_direction,
    probe_grid,
)
from ssm_jax.dynamics.discrete import train
from ssm_jax.dynamics.flow import gradient_flow
from ssm_jax.metrics.separable import SeparableMetrics
from ssm_jax.models.linear import Linear
from ssm_jax.models.two_layer_relu import TwoLayerReLU
from ssm_jax.objective import Objective


@pytest.mark.parametrize("dim,n_pos,n_neg", [(2, 30, 10), (3, 5, 25), (50, 8, 12)])
def test_blobs_sizes_labels_and_separation(dim, n_pos, n_neg):
    X, y = gaussian_blobs(jax.random.key(0), n_pos, n_neg, separation=2.0, rotation=0.4,
                          dim=dim, gap=0.6)
    assert X.shape == (n_pos + n_neg, dim)
    assert np.sum(y == 1) == n_pos and np.sum(y == -1) == n_neg
    along = np.asarray(X @ mean_direction(0.4, dim)) * np.asarray(y)
    assert along.min() >= 0.3 - 1e-12  # separable through the origin with band gap / 2
    max_margin(X, y)  # does not raise
    X2, y2 = gaussian_blobs(jax.random.key(0), n_pos, n_neg, separation=2.0, rotation=0.4,
                            dim=dim, gap=0.6)
    np.testing.assert_array_equal(X, X2)  # explicit keys: reproducible


def test_overlapping_blobs_are_not_separable_and_rotation_turns_the_means():
    X, y = gaussian_blobs(jax.random.key(1), 200, 200, separation=1.0, separable=False)
    along = np.asarray(X[:, 0]) * np.asarray(y)
    assert along.min() < 0
    X, y = gaussian_blobs(jax.random.key(1), 400, 400, separation=6.0, rotation=np.pi / 2)
    mean = np.asarray(X[np.asarray(y) > 0].mean(0))
    np.testing.assert_allclose(mean, [0.0, 3.0], atol=0.2)


def test_bad_data_arguments_raise():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="num_positive"):
        gaussian_blobs(key, 0, 5)
    with pytest.raises(ValueError, match="spread"):
        gaussian_blobs(key, 5, 5, spread=0.0)
    with pytest.raises(ValueError, match="key"):
        gaussian_blobs(None, 5, 5)
    with pytest.raises(ValueError, match="resolution"):
        probe_grid(3.0, 1)
    with pytest.raises(ValueError, match="negative_weight"):
        importance_weights(jnp.array([1, -1]), 2.0, 0.0)


def test_probe_grid_and_weights():
    grid = probe_grid(2.0, 5)
    assert grid.shape == (25, 2)
    np.testing.assert_allclose(grid[1] - grid[0], [1.0, 0.0])  # x1 runs along a row
    q = importance_weights(jnp.array([1, -1, 1]), 2.0**-8)
    np.testing.assert_allclose(q, [2.0**-8, 1.0, 2.0**-8])
    assert augment_bias(grid).shape == (25, 3)


def test_linear_bias_is_an_augmented_input():
    X, y = gaussian_blobs(jax.random.key(2), 6, 6)
    with_bias = Linear(2, bias=True, init_scale=0.5, key=jax.random.key(0))
    augmented = Linear(3)
    augmented = eqx.tree_at(lambda m: m.weight, augmented, with_bias.end_to_end[0])
    np.testing.assert_allclose(with_bias(X), augmented(augment_bias(X)))
    assert with_bias(X).shape == (12, 1)
    with pytest.raises(ValueError, match="key"):
        Linear(2, init_scale=0.1)


def test_mlp_is_two_homogeneous_and_trains():
    X, y = gaussian_blobs(jax.random.key(3), 8, 8)
    mlp = TwoLayerReLU(2, 6, key=jax.random.key(0))
    scaled = jax.tree.map(lambda x: 3.0 * x, mlp)
    np.testing.assert_allclose(scaled(X), 9.0 * mlp(X), rtol=1e-10)
    objective = Objective(y, losses.logistic, inputs=X)
    metrics = SeparableMetrics(X)
    traj = train(mlp, objective, optax.sgd(0.5), 200, record_every=50, metrics=metrics)
    assert traj.metrics["class_accuracy"][-1].min() == 1.0
    assert np.all(np.isnan(traj.metrics["direction_cosine"]))
    with pytest.raises(ValueError, match="width"):
        TwoLayerReLU(2, 0, key=jax.random.key(0))


def test_metrics_values_and_one_compilation_for_all_weights():
    X, y = gaussian_blobs(jax.random.key(4), 6, 6)
    svm = max_margin(X, y).direction
    probe = probe_grid(4.0, 11)
    metrics = SeparableMetrics(probe, svm, grid=probe)
    model = Linear(2)
    model = eqx.tree_at(lambda m: m.weight, model, jnp.asarray(svm))
    objective = Objective(y, losses.logistic, inputs=X)
    out = metrics(model, objective)
    assert float(out["direction_cosine"]) == pytest.approx(1.0)
    assert float(out["direction_angle"]) == pytest.approx(0.0, abs=1e-7)
    # The SVM's normalized margin is 1 / |w_hat|.
    assert float(out["normalized_margin"]) == pytest.approx(1 / np.linalg.norm(svm))
    expected = np.mean(np.asarray(probe @ svm) > 0)
    assert float(out["probe_positive"]) == pytest.approx(expected)
    assert out["class_loss"].shape == (2,) and out["grid_outputs"].shape == (121,)
    with pytest.raises(ValueError, match="svm_direction"):
        SeparableMetrics(probe, jnp.zeros(2))

    ts = jnp.concatenate([jnp.zeros(1), jnp.logspace(-1, 6, 8)])
    # With a bias (augmented inputs) the weights shift the boundary early on.
    metrics = SeparableMetrics(augment_bias(probe), max_margin(augment_bias(X), y).direction)
    runs = []
    for k in (-8, 0, 8):
        obj = Objective(y, losses.logistic, example_weights=importance_weights(y, 2.0**k),
                        inputs=augment_bias(X))
        runs.append(gradient_flow(Linear(3), obj, ts=ts, metrics=metrics))
    # One compilation serves every weight: the later runs compile nothing.
    assert runs[1].stats["compile_seconds"] + runs[2].stats["compile_seconds"] < 0.5
    # Weighting the positives up moves the early boundary toward more positives.
    early = [float(r.metrics["probe_positive"][2]) for r in runs]
    assert early[0] < early[1] < early[2]
