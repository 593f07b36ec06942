import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import log_softmax

import ssm_jax as sj
from ssm_jax import losses


def _logits_labels():
    key = jax.random.key(3)
    return jax.random.normal(key, (7, 4)), jnp.array([0, 1, 2, 3, 0, 1, 2])


def test_square_and_centered():
    z, y = _logits_labels()
    onehot = np.eye(4)[y]
    np.testing.assert_allclose(losses.square(z, y), 0.5 * np.sum((z - onehot) ** 2, 1))
    np.testing.assert_allclose(losses.square_centered(z, y),
                               0.5 * np.sum((z - onehot + 0.25) ** 2, 1))


def test_cross_entropy_matches_scipy():
    z, y = _logits_labels()
    expected = -log_softmax(np.asarray(z), axis=1)[np.arange(7), y]
    np.testing.assert_allclose(losses.cross_entropy(z, y), expected, rtol=1e-12)


def test_margin_losses():
    f = jnp.array([-2.0, -0.3, 0.0, 0.7, 1.0, 3.0])
    y = jnp.array([1, -1, 1, 1, -1, 1])
    m = np.asarray(f * y)
    np.testing.assert_allclose(losses.logistic(f, y), np.log1p(np.exp(-m)), rtol=1e-12)
    np.testing.assert_allclose(losses.exponential(f, y), np.exp(-m), rtol=1e-12)
    np.testing.assert_allclose(losses.square_margin(f, y), 0.5 * (f - y) ** 2, rtol=1e-12)


def test_polynomial_tail_is_continuous_and_polynomial():
    loss = losses.PolynomialTail(alpha=2.0)
    near_one = loss(jnp.array([1 - 1e-9, 1.0, 1 + 1e-9]), jnp.ones(3))
    np.testing.assert_allclose(near_one, 1.0, rtol=1e-7)
    np.testing.assert_allclose(loss(jnp.array([4.0]), jnp.ones(1)), [4.0**-2])
    grad = jax.grad(lambda m: loss.of_margin(m))(jnp.array(-30.0))
    assert np.isfinite(grad)
    with pytest.raises(ValueError, match="alpha"):
        losses.PolynomialTail(alpha=-1.0)


def test_progress_endpoints():
    k = 4
    y = jnp.array([0, 3])
    fit = jax.nn.one_hot(y, k)
    np.testing.assert_allclose(losses.square.progress(fit, y), 1.0)
    np.testing.assert_allclose(losses.square_centered.progress(fit - 1 / k, y), 1.0)
    np.testing.assert_allclose(losses.cross_entropy.progress(jnp.zeros((2, k)), y), 0.0,
                               atol=1e-12)
    np.testing.assert_allclose(losses.cross_entropy.progress(1e3 * fit, y), 1.0)


def test_class_loss_label_convention():
    """Class indices 0..k-1; padding (-1) has no class, output 0 and is never correct."""
    z, y = _logits_labels()
    labels = jnp.append(y, losses.square.padding_label)
    outputs = jnp.vstack([z, jnp.ones((1, 4))])
    assert losses.cross_entropy.check_labels(np.asarray(y)) == 4
    assert losses.square.check_labels(np.asarray(y), 6) == 6
    np.testing.assert_array_equal(losses.square.class_index(labels), labels)
    np.testing.assert_allclose(losses.square.correct_output(outputs, labels),
                               np.append(np.asarray(z)[np.arange(7), y], 0.0))
    np.testing.assert_array_equal(losses.cross_entropy.correct(outputs, labels),
                                  np.append(np.argmax(z, axis=1) == y, False))
    with pytest.raises(ValueError, match="labels"):
        losses.square.check_labels(np.array([0, 1, 2]), 2)


def test_margin_loss_label_convention():
    """Labels -1/+1 are classes 0/1; padding (0) has no class, margin 0 and is never correct."""
    f = jnp.array([[0.5], [-2.0], [1.0], [3.0]])
    y = jnp.array([1, 1, -1, losses.logistic.padding_label])
    assert losses.logistic.check_labels(np.asarray(y[:3])) == 2
    np.testing.assert_array_equal(losses.logistic.class_index(y), [1, 1, 0, -1])
    np.testing.assert_allclose(losses.logistic.correct_output(f, y), [0.5, -2.0, -1.0, 0.0])
    np.testing.assert_array_equal(losses.logistic.correct(f, y), [True, False, False, False])
    with pytest.raises(ValueError, match="labels"):
        losses.logistic.check_labels(np.array([1, 0, -1]))
    with pytest.raises(ValueError, match="num_classes"):
        losses.logistic.check_labels(np.array([1, -1]), 3)


def test_l2_penalty_counts_every_parameter():
    model = sj.UFM(np.array([2, 3]), 3, init_scale=0.5, key=jax.random.key(0), bias=True)
    expected = 0.5 * (np.sum(model.W**2) + np.sum(model.H**2) + np.sum(model.b**2))
    assert float(losses.l2_penalty(model)) == pytest.approx(float(expected))
