import jax.numpy as jnp
import numpy as np
import pytest

import ssm_jax as sj


def test_step_counts_and_labels():
    spec = sj.StepImbalance(num_classes=10, ratio=10.0, minority_size=10, majority_fraction=0.5)
    np.testing.assert_array_equal(spec.counts, [100] * 5 + [10] * 5)
    assert spec.labels.shape == (550,)
    np.testing.assert_array_equal(np.bincount(spec.labels), spec.counts)


def test_long_tail_counts():
    spec = sj.LongTailImbalance(num_classes=5, ratio=16.0, max_size=160)
    np.testing.assert_array_equal(spec.counts, [160, 80, 40, 20, 10])


@pytest.mark.parametrize("power", [0.0, 0.5, 1.0, 2.0])
def test_class_weights_mean_one_and_power_law(power):
    counts = np.array([100, 30, 7, 2])
    w = sj.class_weights(counts, power)
    assert jnp.sum(w * counts) == pytest.approx(counts.sum(), rel=1e-12)
    # omega_c n_c^gamma is the same for every class.
    np.testing.assert_allclose(w * counts**power, (w * counts**power)[0], rtol=1e-12)


def test_label_matrix_columns():
    counts = np.array([3, 1])
    w = sj.class_weights(counts, 1.0)
    T = sj.label_matrix(counts, w, center=True)
    expected = np.array([[0.5, 0.5, 0.5, -0.5], [-0.5, -0.5, -0.5, 0.5]])
    expected *= np.sqrt(np.asarray(w))[[0, 0, 0, 1]]
    np.testing.assert_allclose(T, expected, rtol=1e-12)


@pytest.mark.parametrize("power", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("center", [False, True])
def test_spectrum_matches_full_label_matrix(power, center):
    counts = np.array([12, 12, 5, 3, 3])
    w = sj.class_weights(counts, power)
    full = np.linalg.svd(np.asarray(sj.label_matrix(counts, w, center=center)), compute_uv=False)
    np.testing.assert_allclose(sj.label_spectrum(counts, w, center=center), full, atol=1e-10)


def test_uncentered_spectrum_is_sqrt_counts():
    counts = np.array([40, 40, 4, 4, 4])
    np.testing.assert_allclose(sj.label_spectrum(counts), np.sqrt(np.sort(counts)[::-1]))
    w = sj.class_weights(counts, 1.0)
    s = sj.label_spectrum(counts, w)
    np.testing.assert_allclose(s, np.sqrt(counts.sum() / counts.size), rtol=1e-12)


@pytest.mark.parametrize("k, rho, R, n_min", [(10, 0.5, 10.0, 10), (8, 0.25, 4.0, 3),
                                              (6, 2 / 3, 16.0, 2)])
def test_centered_step_spectrum_multiplicities(k, rho, R, n_min):
    """docs/theory.md, section 4: sqrt(R n_min) x (rho k - 1), sqrt(n_min) x ((1-rho) k - 1),
    sqrt(((1-rho) R + rho) n_min) once and 0 once."""
    spec = sj.StepImbalance(k, R, n_min, rho)
    kmaj = round(rho * k)
    rho = kmaj / k
    expected = ([np.sqrt(R * n_min)] * (kmaj - 1) + [np.sqrt(n_min)] * (k - kmaj - 1)
                + [np.sqrt(((1 - rho) * R + rho) * n_min), 0.0])
    s = np.asarray(sj.label_spectrum(spec.counts, center=True))
    np.testing.assert_allclose(s, np.sort(expected)[::-1], atol=1e-9)
    # Centered and re-weighted with gamma = 1: k - 1 equal values sqrt(n/k) and one 0.
    w = sj.class_weights(spec.counts, 1.0)
    s = np.asarray(sj.label_spectrum(spec.counts, w, center=True))
    n = spec.counts.sum()
    np.testing.assert_allclose(s[:-1], np.sqrt(n / k), rtol=1e-10)
    assert abs(s[-1]) < 1e-7


@pytest.mark.parametrize("kwargs, name", [
    (dict(num_classes=10, ratio=0.5, minority_size=10), "ratio"),
    (dict(num_classes=1, ratio=2.0, minority_size=10), "num_classes"),
    (dict(num_classes=10, ratio=2.0, minority_size=0), "minority_size"),
    (dict(num_classes=10, ratio=2.0, minority_size=5, majority_fraction=1.0), "majority_fraction"),
    (dict(num_classes=10, ratio=2.0, minority_size=5, majority_fraction=0.0), "majority_fraction"),
    (dict(num_classes=10, ratio=float("nan"), minority_size=5), "ratio"),
])
def test_step_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        sj.StepImbalance(**kwargs)


def test_weights_bad_input():
    counts = np.array([5, 2])
    with pytest.raises(ValueError, match="power"):
        sj.class_weights(counts, float("inf"))
    with pytest.raises(ValueError, match="class_weights"):
        sj.label_matrix(counts, jnp.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="class_weights"):
        sj.label_matrix(counts, jnp.array([1.0, jnp.nan]))
    with pytest.raises(ValueError, match="class_weights"):
        sj.label_matrix(counts, jnp.array([1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="counts"):
        sj.class_weights(np.array([5, 0]), 1.0)
