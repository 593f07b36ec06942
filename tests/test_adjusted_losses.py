"""Margin-adjusting losses (logit adjustment, VS, LDAM): values and gradients against numpy
written here, their reductions to the plain losses, their checks, and on separable data the
direction they converge to, against an SVM solved independently by scipy."""

from pathlib import Path
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import expit, log_softmax, softmax

import ssm_jax as sj
from ssm_jax import losses
from ssm_jax.dynamics import base
from ssm_jax.models.linear import Linear

sys.path.insert(0, str(Path(__file__).parent))
from svm_oracle import primal_svm  # noqa: E402

K = 4
COUNTS = np.array([40, 10, 5, 2])


def _logits_labels():
    z = jax.random.normal(jax.random.key(7), (9, K))
    return z, jnp.array([0, 1, 2, 3, 0, 1, 2, 3, 3])


def _adjusted_ce(a, y):
    """-log softmax(a)_y and its gradient in a, softmax(a) - e_y, by numpy."""
    onehot = np.eye(a.shape[1])[y]
    return -np.sum(log_softmax(a, axis=1) * onehot, axis=1), softmax(a, axis=1) - onehot


def _loss_and_grad(loss, z, y):
    values = loss(z, y)
    grad = jax.grad(lambda out: jnp.sum(loss(out, y)))(z)
    return np.asarray(values), np.asarray(grad)


def test_class_losses_and_gradients_match_numpy():
    z, y = _logits_labels()
    zn, yn = np.asarray(z), np.asarray(y)
    priors = COUNTS / COUNTS.sum()
    delta, iota = np.array([1.0, 0.7, 0.5, 0.3]), np.array([0.2, -0.1, 0.0, 0.4])
    margins, scale = np.array([0.1, 0.2, 0.3, 0.5]), 2.0
    onehot = np.eye(K)[yn]
    cases = [
        # (loss, adjusted logits a, da/dz as a factor on softmax(a) - e_y)
        (losses.LogitAdjusted(priors, 1.5), zn + 1.5 * np.log(priors), 1.0),
        (losses.VSLoss(delta, iota), delta * zn + iota, delta),
        (losses.LDAM(margins, scale), scale * (zn - onehot * margins), scale),
    ]
    for loss, a, factor in cases:
        expected, dlda = _adjusted_ce(a, yn)
        values, grad = _loss_and_grad(loss, z, y)
        np.testing.assert_allclose(values, expected, rtol=1e-12)
        np.testing.assert_allclose(grad, factor * dlda, rtol=1e-10, atol=1e-14)


def test_binary_vs_loss_and_gradient_match_numpy():
    f = jnp.array([-2.0, -0.3, 0.0, 0.7, 1.0, 3.0])
    y = jnp.array([1, -1, 1, 1, -1, -1])
    delta, iota = np.array([0.8, 0.4]), np.array([-0.5, 1.2])  # classes -1 and +1
    c = (np.asarray(y) > 0).astype(int)
    m = np.asarray(f * y)
    values, grad = _loss_and_grad(losses.VSMargin(delta, iota), f, y)
    np.testing.assert_allclose(values, np.log1p(np.exp(iota[c] - delta[c] * m)), rtol=1e-12)
    expected = -delta[c] * np.asarray(y) * expit(iota[c] - delta[c] * m)
    np.testing.assert_allclose(grad, expected, rtol=1e-12)


def test_reductions_to_the_plain_losses():
    z, y = _logits_labels()
    ce = losses.cross_entropy(z, y)
    np.testing.assert_allclose(losses.VSLoss(np.ones(K), np.zeros(K))(z, y), ce, rtol=1e-14)
    np.testing.assert_allclose(losses.LogitAdjusted.from_counts(COUNTS, tau=0.0)(z, y), ce,
                               rtol=1e-14)
    np.testing.assert_allclose(losses.LDAM(np.zeros(K), 1.0)(z, y), ce, rtol=1e-14)
    # Logit adjustment is VS with Delta = 1 and iota = tau log pi.
    la = losses.LogitAdjusted.from_counts(COUNTS, tau=0.8)
    vs = losses.VSLoss.from_counts(COUNTS, gamma=0.0, tau=0.8)
    np.testing.assert_allclose(la(z, y), vs(z, y), rtol=1e-13)
    f, s = jnp.linspace(-3.0, 3.0, 7), jnp.array([1, -1, 1, 1, -1, -1, 1])
    np.testing.assert_allclose(losses.VSMargin(np.ones(2), np.zeros(2))(f, s),
                               losses.logistic(f, s), rtol=1e-14)


def test_from_counts_follow_the_papers():
    n = COUNTS.astype(float)
    np.testing.assert_allclose(losses.LogitAdjusted.from_counts(COUNTS).priors, n / n.sum())
    vs = losses.VSLoss.from_counts(COUNTS, gamma=0.2, tau=1.5)
    np.testing.assert_allclose(vs.delta, (n / n.max()) ** 0.2, rtol=1e-14)
    np.testing.assert_allclose(vs.iota, 1.5 * np.log(n / n.sum()), rtol=1e-14)
    ldam = losses.LDAM.from_counts(COUNTS, max_margin=0.5, scale=3.0)
    np.testing.assert_allclose(ldam.margins * n**0.25, ldam.margins[-1] * n[-1] ** 0.25)
    assert float(ldam.margins.max()) == pytest.approx(0.5) and float(ldam.scale) == 3.0
    binary = losses.VSMargin.from_counts(np.array([8, 2]), gamma=0.5, tau=1.0)
    np.testing.assert_allclose(binary.delta, [1.0, 0.5], rtol=1e-14)
    np.testing.assert_allclose(binary.iota, [np.log(2 / 8), np.log(8 / 2)], rtol=1e-14)
    # With gamma = 0 the binary form is the two-logit VS loss of f = z_+ - z_-.
    two = losses.VSLoss.from_counts(np.array([8, 2]), gamma=0.0, tau=1.0)
    binary = losses.VSMargin.from_counts(np.array([8, 2]), gamma=0.0, tau=1.0)
    z, y = _logits_labels()
    z2, y2 = z[:, :2], y % 2
    np.testing.assert_allclose(binary(z2[:, 1] - z2[:, 0], 2 * y2 - 1), two(z2, y2),
                               rtol=1e-13)


def test_predictions_read_the_raw_logits():
    y = jnp.array([0, 3])
    la = losses.LogitAdjusted.from_counts(COUNTS, tau=1.0)
    np.testing.assert_allclose(la.progress(jnp.zeros((2, K)), y), 0.0, atol=1e-12)
    z = jnp.array([[0.1, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.1]])
    np.testing.assert_array_equal(la.correct(z, y), [True, True])
    # Padding (-1) has no class and no margin in LDAM's adjustment.
    ldam = losses.LDAM.from_counts(COUNTS)
    padded = ldam.adjusted_logits(jnp.ones((1, K)), jnp.array([ldam.padding_label]))
    np.testing.assert_array_equal(padded, jnp.ones((1, K)))


@pytest.mark.parametrize("make, match", [
    (lambda: losses.LogitAdjusted(np.array([0.5, 0.0, 0.5])), "priors"),
    (lambda: losses.LogitAdjusted(np.ones(3), tau=np.nan), "tau"),
    (lambda: losses.VSLoss(np.array([1.0, -0.5]), np.zeros(2)), "delta"),
    (lambda: losses.VSLoss(np.ones(3), np.zeros(2)), "iota"),
    (lambda: losses.VSLoss.from_counts(COUNTS, gamma=-1.0, tau=1.0), "gamma"),
    (lambda: losses.LDAM(np.array([0.1, -0.1]), 1.0), "margins"),
    (lambda: losses.LDAM(np.ones(2), 0.0), "scale"),
    (lambda: losses.LDAM.from_counts(np.array([3, 0])), "counts"),
    (lambda: losses.VSMargin(np.ones(3), np.zeros(3)), "delta"),
    (lambda: losses.VSMargin.from_counts(COUNTS, gamma=0.1, tau=1.0), "counts"),
    # Per-class parameters must match the labels' classes.
    (lambda: sj.Objective(sj.labels_from_counts(COUNTS[:3]), losses.LDAM.from_counts(COUNTS)),
     "margins"),
    (lambda: sj.Objective(np.array([1, 0, -1]), losses.VSMargin(np.ones(2), np.zeros(2))),
     "labels"),
])
def test_bad_parameters_are_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_ufm_flows_on_adjusted_losses_compile_once():
    """Every parameter is an array leaf: flows that differ only in margins, scale or
    counts share one compilation."""
    labels = sj.labels_from_counts(COUNTS)
    model = sj.UFM(COUNTS, 5, init_scale=0.1, key=jax.random.key(0))
    traces = eqx.debug.get_num_traces(base.compiled_run)
    finals = []
    for max_margin, scale in [(0.5, 1.0), (1.0, 2.0)]:
        objective = sj.Objective(labels, losses.LDAM.from_counts(COUNTS, max_margin, scale))
        traj = sj.gradient_flow(model, objective, t1=20.0, num_saves=3)
        assert traj.status == "ok"
        finals.append(traj.final.W)
    assert eqx.debug.get_num_traces(base.compiled_run) - traces == 1
    assert not np.allclose(finals[0], finals[1])


# On separable data: a multiplicative adjustment changes the implicit bias, an additive one
# fades. w(t) = w_hat log t + w_tilde + o(1), so the slope of w in log t gives w_hat itself.
TIMES = np.concatenate([[0.0], np.logspace(0, 30, 16)])


def _separable_flow(loss):
    X, y = sj.gaussian_blobs(jax.random.key(0), 6, 6, separation=2.0, rotation=0.3, gap=0.5)
    objective = sj.Objective(y, loss, inputs=X)
    traj = sj.gradient_flow(Linear(2), objective, ts=TIMES, save_params=True, rtol=1e-10,
                            atol=1e-12)
    assert traj.status == "ok"
    return np.asarray(X), np.asarray(y), np.asarray(traj.params.weight)[1:]


def _angle(w, v):
    return np.arccos(np.clip(w @ v / np.linalg.norm(w, axis=-1) / np.linalg.norm(v), -1, 1))


def _slope_error(w, w_hat):
    """|slope of w in log t over the last save interval - w_hat| / |w_hat|."""
    slope = (w[-1] - w[-2]) / np.log(TIMES[-1] / TIMES[-2])
    return np.linalg.norm(slope - w_hat) / np.linalg.norm(w_hat)


def test_multiplicative_adjustment_converges_to_the_cost_sensitive_svm():
    """VS with Delta = (1, 1/2): the direction tends to the SVM with margins
    y_i w.x_i >= 1 / Delta_{y_i}, the SVM of the points Delta_{y_i} y_i x_i."""
    delta = np.array([1.0, 0.5])
    X, y, w = _separable_flow(losses.VSMargin(delta, np.zeros(2)))
    scaled = X * delta[(y > 0).astype(int)][:, None]
    cost_sensitive, plain = primal_svm(scaled, y), primal_svm(X, y)
    assert _angle(cost_sensitive, plain) > 0.3  # far apart: the test tells them apart
    assert _slope_error(w, cost_sensitive) < 1e-3
    errors = _angle(w, cost_sensitive)
    assert np.all(np.diff(errors[4:]) < 0) and errors[-1] < 0.03
    assert _angle(w[-1], plain) > 0.3


def test_additive_adjustment_fades_like_log_t():
    """VS with Delta = 1 and iota = (0, 2): the direction tends to the plain SVM, its error
    falling like 1/log t (as a weight e^iota on the loss's tail would)."""
    X, y, w = _separable_flow(losses.VSMargin(np.ones(2), np.array([0.0, 2.0])))
    plain = primal_svm(X, y)
    assert _slope_error(w, plain) < 1e-3
    scaled_errors = _angle(w, plain)[8:] * np.log(TIMES[9:])
    np.testing.assert_allclose(scaled_errors, scaled_errors[-1], rtol=0.05)
    assert scaled_errors[-1] > 0.5  # the adjustment left a trace that fades only like 1/log t
