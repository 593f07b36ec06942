"""The square-loss UFM's gradient flow in class-affine coordinates: exact, at a cost per step
that does not grow with the number of examples.

Under the square loss with one weight per class (s_c = q_c / n), every feature of class c feels
the same affine pull,

    dh_i/dt = -(s_c W^T W + lambda I) h_i - s_c W^T (b - t_c),

so the features of a class move by one affine map, h_i(t) = Phi_c(t) h_i(0) + beta_c(t), with
Phi_c(0) = I and beta_c(0) = 0. The flow of (W, b, Phi_c, beta_c) is closed: the gradients in
W and b need only each class's sums m_c = sum_i h_i and G_c = sum_i h_i h_i^T, which are
quadratic in (Phi_c, beta_c) given the same sums at the start:

    m_c = Phi_c m0_c + n_c beta_c,   G_c = Phi_c G0_c Phi_c^T + Phi_c m0_c beta_c^T
                                          + beta_c m0_c^T Phi_c^T + n_c beta_c beta_c^T.

The state has k (d^2 + 2 d) + d (k or k + 1) entries and a step costs O(k^2 d^2) whatever n;
the per-example outputs the metrics read cost O(n k d) per save. It pays where classes hold
more examples than the feature dimension (W1: 161k entries at n = 5050 against 11k).
"""

from typing import ClassVar

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .. import _validate
from ..models import UFM, AbstractModel
from ..objective import Objective
from .coordinates import AbstractCoordinates

_INSTEAD = "use coordinates='parameters'"


def check_objective(objective) -> None:
    """Raises a `ValueError` unless `objective` is one whose UFM flow class-affine coordinates
    describe exactly: an `Objective` on free features with the square loss of the logits, and
    every example of a class weighted alike (checked where the weights are concrete; leading
    axes stack members)."""
    loss = getattr(objective, "loss", None)
    if not isinstance(objective, Objective) or objective.inputs is not None or (
            loss.square_targets(objective.num_classes) is None):
        raise ValueError(f"`coordinates` = 'class_affine' is not allowed with a "
                         f"{type(objective).__name__}"
                         f"{'' if loss is None else f' (loss {type(loss).__name__})'}: it is "
                         f"exact for a UFM under an Objective with the square loss only; "
                         f"{_INSTEAD}.")
    if not _validate.is_concrete((objective.example_weights, objective.labels)):
        return  # traced: checked where the arrays are concrete
    weights = np.asarray(objective.example_weights)
    labels = np.asarray(objective.loss.class_index(objective.labels))
    for c in range(objective.num_classes):
        mine = labels == c
        high = np.where(mine, weights, -np.inf).max(axis=-1)
        low = np.where(mine, weights, np.inf).min(axis=-1)
        uneven = mine.any(axis=-1) & (high != low)
        if np.any(uneven):
            raise ValueError(f"`example_weights` range over [{low[uneven].flat[0]}, "
                             f"{high[uneven].flat[0]}] in class {c}: `coordinates` = "
                             "'class_affine' needs one weight per class (class weights may "
                             f"differ and change with time); {_INSTEAD}.")


class ClassAffineFrame(eqx.Module):
    """What class-affine coordinates need of one member's start (see the module's docstring).
    """

    initial: UFM  # the initial parameters: H0 and the parameters' layout
    index: jnp.ndarray  # each example's class, (n,); padding clipped to 0 and masked
    member: jnp.ndarray  # 1 for a class's example, 0 for padding, (n,)
    counts: jnp.ndarray  # n_c, (k,)
    sums: jnp.ndarray  # m0_c, (k, d)
    grams: jnp.ndarray  # G0_c, (k, d, d)
    example_weight: jnp.ndarray  # the example weight shared by each class, (k,)
    targets: jnp.ndarray  # t_c, one row per class, (k, k)
    exact: jnp.ndarray  # whether each class's examples share one weight (traced builds)

    def moments(self, W, Phi, beta):
        """W Phi_c, W beta_c, m_c and W G_c."""
        P = jnp.einsum("kd,cde->cke", W, Phi)
        u = beta @ W.T
        Phi_m0 = jnp.einsum("cde,ce->cd", Phi, self.sums)
        m = Phi_m0 + self.counts[:, None] * beta
        WG = (jnp.einsum("cke,cef,cgf->ckg", P, self.grams, Phi)
              + jnp.einsum("ck,cd->ckd", jnp.einsum("cke,ce->ck", P, self.sums), beta)
              + jnp.einsum("ck,cd->ckd", u, m))
        return P, u, m, WG

    def features(self, Phi, beta):
        """Every example's features, H (d, n): O(n d^2), for the final model and on request."""
        H = jnp.einsum("nde,en->dn", Phi[self.index], self.initial.H) + beta[self.index].T
        return H * self.member


class ClassAffine(AbstractCoordinates):
    """Class-affine coordinates of a `UFM` under the square loss with one weight per class:
    the state (W, b, Phi, beta), one affine map per class that carries all of its features
    (see the module's docstring)."""

    name: ClassVar[str] = "class_affine"

    def check(self, objective):
        check_objective(objective)

    def of(self, params, static, objective):
        model = eqx.combine(params, static)
        if not isinstance(model, UFM):
            raise ValueError(f"`coordinates` = 'class_affine' is not allowed with a "
                             f"{type(model).__name__}: it describes the flow of a UFM; "
                             f"{_INSTEAD}.")
        check_objective(objective)
        k = objective.num_classes
        labels = objective.loss.class_index(objective.labels)
        one_hot = (labels[:, None] == jnp.arange(k)).astype(params.W.dtype)  # (n, k)
        H0 = params.H
        counts = one_hot.sum(0)
        q = jnp.where(one_hot > 0, objective.example_weights[:, None], jnp.nan)  # (n, k)
        weight = jnp.where(counts > 0, jnp.nanmax(q, axis=0, initial=-jnp.inf), 0.0)
        exact = jnp.all((counts == 0) | (weight == jnp.nanmin(q, axis=0, initial=jnp.inf)))
        return ClassAffineFrame(
            initial=params,
            index=jnp.maximum(labels, 0),
            member=one_hot.sum(1),
            counts=counts,
            sums=(H0 @ one_hot).T,
            grams=jnp.einsum("di,ei,ic->cde", H0, H0, one_hot),
            example_weight=weight.astype(H0.dtype),
            targets=objective.loss.square_targets(k, params.W.dtype),
            exact=exact)

    def state(self, frame, params):
        k, d = params.W.shape
        eye = jnp.broadcast_to(jnp.eye(d, dtype=params.W.dtype), (k, d, d))
        # Uneven weights within a class, which only a traced build lets through
        # (`check_objective` refuses concrete ones): NaN, so the run fails, never misleads.
        W = jnp.where(frame.exact, params.W, jnp.nan)
        return W, params.b, eye, jnp.zeros((k, d), params.W.dtype)

    def field(self, frame, t, y, objective, static):
        W, b, Phi, beta = y
        current = objective.at(t)
        s = current.class_weights.weights * frame.example_weight / current.num_examples
        l2 = current.l2
        P, u, m, WG = frame.moments(W, Phi, beta)
        r0 = (0.0 if b is None else b) - frame.targets  # the residual at h = 0, (k classes, k)
        dW = -jnp.einsum("c,ckd->kd", s, WG + r0[:, :, None] * m[:, None, :]) - l2 * W
        db = None if b is None else (
            -jnp.einsum("c,ck->k", s, m @ W.T + frame.counts[:, None] * r0) - l2 * b)
        dPhi = -s[:, None, None] * jnp.einsum("kd,cke->cde", W, P) - l2 * Phi
        dbeta = -s[:, None] * ((u + r0) @ W) - l2 * beta
        return dW, db, dPhi, dbeta

    def model(self, frame, y, static):
        W, b, Phi, beta = y
        return ClassAffineUFM(W, b, Phi, beta, frame)

    def params(self, frame, y, static):
        W, b, Phi, beta = y
        return eqx.tree_at(lambda p: (p.W, p.H, p.b), frame.initial,
                           (W, frame.features(Phi, beta), b), is_leaf=lambda x: x is None)


class ClassAffineUFM(AbstractModel):
    """A UFM given in class-affine coordinates: its outputs and L2 penalty, computed from the
    state without forming the features (for the metrics along a flow)."""

    W: jnp.ndarray
    b: jnp.ndarray | None
    Phi: jnp.ndarray
    beta: jnp.ndarray
    frame: ClassAffineFrame

    @property
    def H(self):
        """The features, formed on request (metrics that read them)."""
        return self.frame.features(self.Phi, self.beta)

    def __call__(self, inputs=None):
        frame = self.frame
        P = jnp.einsum("kd,cde->cke", self.W, self.Phi)
        u = self.beta @ self.W.T
        outputs = (jnp.einsum("nke,en->nk", P[frame.index], frame.initial.H)
                   + u[frame.index]) * frame.member[:, None]
        return outputs if self.b is None else outputs + self.b

    def l2_penalty(self):
        frame = self.frame
        Phi_m0 = jnp.einsum("cde,ce->cd", self.Phi, frame.sums)
        features = (jnp.einsum("cde,cef,cdf->", self.Phi, frame.grams, self.Phi)
                    + 2 * jnp.sum(self.beta * Phi_m0)
                    + jnp.sum(frame.counts * jnp.sum(self.beta**2, axis=1)))
        bias = 0.0 if self.b is None else jnp.sum(self.b**2)
        return 0.5 * (jnp.sum(self.W**2) + features + bias)
