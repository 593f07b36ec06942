import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ssm_jax as sj
from ssm_jax.models import aligned_factors, target_modes


def _target():
    counts = np.array([5, 3, 1])
    return sj.label_matrix(counts, sj.class_weights(counts, 0.5))


def test_shapes():
    counts = np.array([4, 2])
    key = jax.random.key(0)
    assert sj.UFM(counts, 3, key=key)().shape == (6, 2)
    assert sj.UFM(counts, 3, key=key, bias=True).b.shape == (2,)
    assert sj.SSM((2, 6), 3, key=key)().shape == (6, 2)
    net = sj.DeepLinear(2, 5, 3, in_features=4, key=key)
    assert net(jnp.ones((6, 4))).shape == (6, 2)
    assert [W.shape for W in net.weights] == [(5, 4), (5, 5), (2, 5)]
    deep_ufm = sj.DeepLinear(2, 5, 2, num_examples=6, key=key)
    assert deep_ufm().shape == (6, 2)


def test_init_scale_sets_the_entry_spread():
    model = sj.UFM(np.array([400, 400]), 50, init_scale=1e-2, key=jax.random.key(0))
    assert float(jnp.std(model.H)) == pytest.approx(1e-2, rel=0.02)


@pytest.mark.parametrize("num_factors", [1, 2, 3, 4])
def test_aligned_factors_product_and_balance(num_factors):
    T = _target()
    a0 = jnp.array([0.1, 0.02, 0.3])
    factors = aligned_factors(T, num_factors, 4, a0)
    product = factors[0]
    for F in factors[1:]:
        product = F @ product
    U, s, V = target_modes(T)
    np.testing.assert_allclose(product, (U * a0) @ V.T, atol=1e-12)
    for lower, upper in zip(factors[:-1], factors[1:], strict=True):
        np.testing.assert_allclose(upper.T @ upper, lower @ lower.T, atol=1e-12)


def test_aligned_constructors():
    T = _target()
    ssm = sj.SSM.aligned(T, dim=4, init_strength=0.01)
    U, s, V = target_modes(T)
    np.testing.assert_allclose(sj.mode_strengths(ssm().T, U, V), 0.01, rtol=1e-10)
    ufm = sj.UFM.aligned(np.array([5, 3, 1]), dim=4, init_output=0.2)
    outputs = ufm()
    np.testing.assert_allclose(outputs[np.arange(9), sj.labels_from_counts([5, 3, 1])], 0.2)
    net = sj.DeepLinear.aligned(T, width=4, depth=2, init_strength=0.05, free_features=True)
    np.testing.assert_allclose(sj.mode_strengths(net.end_to_end, U, V), 0.05, rtol=1e-10)


@pytest.mark.parametrize("bias", [False, True])
def test_linear_predictor_reproduces_the_outputs(bias):
    """f(x) = B [x, 1] with B read off `linear_predictor` (row by row, bias last)."""
    X = jax.random.normal(jax.random.key(1), (5, 3))
    augmented = jnp.concatenate([X, jnp.ones((5, 1))], axis=1) if bias else X
    deep = sj.DeepLinear(2, 4, 3, in_features=3, init_scale=0.5, key=jax.random.key(2),
                         bias=bias)
    if bias:
        deep = eqx.tree_at(lambda m: m.b, deep, jnp.array([0.3, -0.7]))
    for model in (sj.Linear(3, bias=bias, init_scale=0.5, key=jax.random.key(3)), deep):
        outputs = model(X)
        B = model.linear_predictor().reshape(outputs.shape[1], -1)
        np.testing.assert_allclose(augmented @ B.T, outputs, rtol=1e-12)
    free = sj.DeepLinear(2, 4, 2, num_examples=5, key=jax.random.key(0))
    assert free.linear_predictor() is None


def test_target_modes_drop_the_null_direction():
    counts = np.array([4, 4, 2])
    U, s, V = target_modes(sj.label_matrix(counts, center=True))
    assert s.size == 2


@pytest.mark.parametrize("build, name", [
    (lambda: sj.UFM(np.array([3, 2]), 4, init_scale=0.0, key=jax.random.key(0)), "init_scale"),
    (lambda: sj.UFM(np.array([3, 2]), 4, init_scale=-1.0, key=jax.random.key(0)), "init_scale"),
    (lambda: sj.UFM(np.array([3, 2]), 0, key=jax.random.key(0)), "dim"),
    (lambda: sj.SSM((2, 5), 0, key=jax.random.key(0)), "dim"),
    (lambda: sj.UFM(np.array([3, 2]), 4, key=None), "key"),
    (lambda: sj.DeepLinear(2, 4, 0, in_features=3, key=jax.random.key(0)), "depth"),
    (lambda: sj.DeepLinear(2, 4, 2, key=jax.random.key(0)), "in_features"),
    (lambda: sj.UFM.aligned(np.array([3, 2, 1]), 2, 0.1), "dim"),
    (lambda: sj.SSM.aligned(_target(), 4, -0.1), "init_strength"),
])
def test_bad_input(build, name):
    with pytest.raises(ValueError, match=name):
        build()
