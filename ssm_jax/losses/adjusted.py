"""Margin-adjusting losses: the cross-entropy (or logistic loss) of logits adjusted per class
during training, to counter class imbalance without weights.

- `LogitAdjusted` (Menon et al. 2021): additive, z_c + tau log pi_c.
- `VSLoss` (vector scaling; Kini et al. 2021): multiplicative and additive,
  Delta_c z_c + iota_c.
- `LDAM` (Cao et al. 2019): a margin m_y ~ n_y^(-1/4) subtracted from the correct logit,
  s (z - m_y e_y).
- `VSMargin`: the binary VS loss on one output, log(1 + exp(iota_y - Delta_y y f)).

The adjustments act in training only: predictions, accuracy and progress read the raw
outputs. Every parameter is an array leaf, so a sweep over it compiles once; `from_counts`
builds each from class counts as its paper does.

On separable data an additive adjustment fades like a weight (it scales the loss's
exponential tail by e^(iota_y)), while a multiplicative one changes the margins the flow
maximizes: the direction tends to the cost-sensitive SVM, min |w| s.t. y_i w.x_i >=
1/Delta_{y_i} (see docs/theory.md).
"""

import abc

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float
import numpy as np

from .. import _validate
from ..data.imbalance import _check_counts
from ._base import AbstractBinaryLoss, AbstractClassLoss, margins, per_class
from .standard import cross_entropy


def _vector(name: str, value, size: int | None = None, **bounds) -> Float[Array, " k"]:
    expected = f"({size},)" if size else "(k,), k >= 2"
    if np.ndim(value) != 1 or np.shape(value)[0] < 2 or size not in (None, np.size(value)):
        raise ValueError(f"`{name}` has shape {np.shape(value)}, expected {expected}: one "
                         "entry per class.")
    _validate.number(name, value, **bounds)
    return jnp.asarray(value, dtype=jnp.result_type(float))


def _scalar(name: str, value, **bounds) -> Float[Array, ""]:
    if np.ndim(value):
        raise ValueError(f"`{name}` has shape {np.shape(value)}, expected a scalar.")
    _validate.number(name, value, **bounds)
    return jnp.asarray(value, dtype=jnp.result_type(float))


def _counts(counts) -> Float[Array, " k"]:
    return jnp.asarray(_check_counts(counts), dtype=jnp.result_type(float))


def _vs_scales(n_c, gamma):
    """Delta_c = (n_c / n_max)^gamma: below 1 for the smaller classes (Kini et al. 2021)."""
    gamma = _scalar("gamma", gamma, low=0.0)
    return (n_c / jnp.max(n_c)) ** gamma


class AbstractAdjustedCrossEntropy(AbstractClassLoss):
    """The cross-entropy of adjusted logits, -log softmax(a(z, y))_y. The adjustment is a
    training device: `progress` and `correct` read the raw logits z, as predictions do.

    A new adjusted loss provides `adjusted_logits(outputs, labels)`.
    """

    @abc.abstractmethod
    def adjusted_logits(self, outputs: Float[Array, "n k"], labels) -> Float[Array, "n k"]:
        """The logits the cross-entropy is taken of, (n, k); arguments as for the loss."""

    def __call__(self, outputs, labels):
        return cross_entropy(self.adjusted_logits(outputs, labels), labels)

    def progress(self, outputs, labels):
        return cross_entropy.progress(outputs, labels)

    def square_targets(self, num_classes, dtype=None):
        return None


class LogitAdjusted(AbstractAdjustedCrossEntropy):
    """Logit-adjusted cross-entropy (Menon et al. 2021): -log softmax(z + tau log pi)_y.

    Training the adjusted logits to the class posteriors leaves the raw logits z at the
    posteriors divided by pi^tau: at tau = 1 their argmax minimizes the balanced error.

    **Arguments:**

    - `priors`: pi_c > 0, (k,); a common factor has no effect (softmax ignores shifts).
    - `tau`: the strength, a finite scalar; 0 is the cross-entropy.
    """

    priors: Float[Array, " k"] = per_class()
    tau: Float[Array, ""]

    def __init__(self, priors, tau=1.0):
        self.priors = _vector("priors", priors, low=0.0, low_open=True)
        self.tau = _scalar("tau", tau)

    @classmethod
    def from_counts(cls, counts, tau=1.0) -> "LogitAdjusted":
        """The loss with the training set's priors pi_c = n_c / n.

        **Arguments:**

        - `counts`: examples per class, (k,).
        - `tau`: as for `LogitAdjusted`; 1 is Menon et al.'s consistent choice.

        **Returns:** a `LogitAdjusted`.
        """
        n_c = _counts(counts)
        return cls(n_c / jnp.sum(n_c), tau)

    def adjusted_logits(self, outputs, labels):
        return outputs + self.tau * jnp.log(self.priors)


class VSLoss(AbstractAdjustedCrossEntropy):
    """Vector-scaling loss (Kini et al. 2021): -log softmax(Delta z + iota)_y, per class a
    multiplicative Delta_c and an additive iota_c. Delta = 1, iota = 0 is the cross-entropy.

    **Arguments:**

    - `delta`: Delta_c > 0, (k,).
    - `iota`: iota_c, finite, (k,).
    """

    delta: Float[Array, " k"] = per_class()
    iota: Float[Array, " k"] = per_class()

    def __init__(self, delta, iota):
        self.delta = _vector("delta", delta, low=0.0, low_open=True)
        self.iota = _vector("iota", iota, size=self.delta.size)

    @classmethod
    def from_counts(cls, counts, *, gamma, tau) -> "VSLoss":
        """Kini et al.'s choice: Delta_c = (n_c / n_max)^gamma, iota_c = tau log pi_c.

        **Arguments:**

        - `counts`: examples per class, (k,).
        - `gamma`: >= 0, the multiplicative part's strength (0: none).
        - `tau`: finite, the additive part's strength (0: none; as in `LogitAdjusted`).

        **Returns:** a `VSLoss`.
        """
        n_c = _counts(counts)
        return cls(_vs_scales(n_c, gamma), _scalar("tau", tau) * jnp.log(n_c / jnp.sum(n_c)))

    def adjusted_logits(self, outputs, labels):
        return self.delta * outputs + self.iota


class LDAM(AbstractAdjustedCrossEntropy):
    """Label-distribution-aware margin loss (Cao et al. 2019): -log softmax(s (z - m_y e_y))_y,
    a margin m_y subtracted from the correct logit before the scale s.

    **Arguments:**

    - `margins`: m_c >= 0, (k,).
    - `scale`: s > 0. Cao et al. use s = 30 on normalized (cosine) logits; raw logits as here
      call for s near 1.
    """

    margins: Float[Array, " k"] = per_class()
    scale: Float[Array, ""]

    def __init__(self, margins, scale=1.0):
        self.margins = _vector("margins", margins, low=0.0)
        self.scale = _scalar("scale", scale, low=0.0, low_open=True)

    @classmethod
    def from_counts(cls, counts, max_margin=0.5, scale=1.0) -> "LDAM":
        """Cao et al.'s margins m_c = C n_c^(-1/4), with C such that the smallest class has
        the largest margin, `max_margin`.

        **Arguments:**

        - `counts`: examples per class, (k,).
        - `max_margin`: >= 0, the smallest class's margin (0.5 in Cao et al.).
        - `scale`: as for `LDAM`.

        **Returns:** an `LDAM`.
        """
        n_c = _counts(counts)
        max_margin = _scalar("max_margin", max_margin, low=0.0)
        return cls(max_margin * (jnp.min(n_c) / n_c) ** 0.25, scale)

    def adjusted_logits(self, outputs, labels):
        # Padding (label -1) has an all-zero one-hot row: no margin.
        onehot = jax.nn.one_hot(labels, outputs.shape[-1], dtype=outputs.dtype)
        return self.scale * (outputs - onehot * self.margins)


class VSMargin(AbstractBinaryLoss):
    """The binary VS loss (Kini et al. 2021) on one output: log(1 + exp(iota_y - Delta_y y f)).
    Delta = 1, iota = 0 is the logistic loss.

    **Arguments:**

    - `delta`: Delta > 0 of the -1 class and of the +1 class, (2,) (class indices 0 and 1).
    - `iota`: iota of the -1 class and of the +1 class, finite, (2,).
    """

    delta: Float[Array, " 2"]
    iota: Float[Array, " 2"]

    def __init__(self, delta, iota):
        self.delta = _vector("delta", delta, size=2, low=0.0, low_open=True)
        self.iota = _vector("iota", iota, size=2)

    @classmethod
    def from_counts(cls, counts, *, gamma, tau) -> "VSMargin":
        """Delta_c = (n_c / n_max)^gamma and iota_c = tau log(pi_other / pi_c): the
        multiclass `VSLoss.from_counts` of two logits with f = z_+ - z_- (exact at gamma = 0).

        **Arguments:**

        - `counts`: examples of the -1 class and of the +1 class, (2,).
        - `gamma`, `tau`: as for `VSLoss.from_counts`.

        **Returns:** a `VSMargin`.
        """
        n_c = _counts(counts)
        if n_c.size != 2:
            raise ValueError(f"`counts` = {np.asarray(counts)} is not allowed: expected the "
                             "counts of the -1 class and of the +1 class, (2,).")
        log_n = jnp.log(n_c)
        return cls(_vs_scales(n_c, gamma), _scalar("tau", tau) * (log_n[::-1] - log_n))

    def __call__(self, outputs, labels):
        # Padding (label 0) takes class 0's parameters, at margin 0 and weight 0.
        c = jnp.clip(self.class_index(labels), 0)
        return jnp.logaddexp(0.0, self.iota[c] - self.delta[c] * margins(outputs, labels))
