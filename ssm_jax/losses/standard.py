"""The standard losses: square and cross-entropy on logits; logistic, exponential, square and
polynomially tailed on the margin."""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int
import numpy as np

from .. import _validate
from ._base import AbstractClassLoss, AbstractMarginLoss


class Square(AbstractClassLoss):
    """(1/2)|z - t_y|^2 with target t_y = e_y, or e_y - 1/k when `center`."""

    center: bool = eqx.field(static=True, default=False)

    def _targets(self, outputs, labels):
        k = outputs.shape[-1]
        targets = jax.nn.one_hot(labels, k, dtype=outputs.dtype)
        return targets - 1.0 / k if self.center else targets

    def __call__(self, outputs: Float[Array, "n k"], labels: Int[Array, " n"]):
        return 0.5 * jnp.sum((outputs - self._targets(outputs, labels)) ** 2, axis=-1)

    def progress(self, outputs, labels):
        k = outputs.shape[-1]
        correct = self.correct_output(outputs, labels)
        return correct / (1.0 - 1.0 / k) if self.center else correct

    def square_targets(self, num_classes, dtype=None):
        return self._targets(jnp.zeros((num_classes, num_classes), dtype),
                             jnp.arange(num_classes))


class CrossEntropy(AbstractClassLoss):
    """-log softmax(z)_y. Progress is the correct-class probability, rescaled from chance 1/k."""

    def __call__(self, outputs: Float[Array, "n k"], labels: Int[Array, " n"]):
        logp = jax.nn.log_softmax(outputs, axis=-1)
        return -jnp.take_along_axis(logp, labels[:, None], axis=-1)[:, 0]

    def progress(self, outputs, labels):
        k = outputs.shape[-1]
        p = jnp.exp(-self(outputs, labels))
        return (p - 1.0 / k) / (1.0 - 1.0 / k)

    def square_targets(self, num_classes, dtype=None):
        return None


class Logistic(AbstractMarginLoss):
    """log(1 + e^-m)."""

    def of_margin(self, m):
        return jnp.logaddexp(0.0, -m)


class Exponential(AbstractMarginLoss):
    """e^-m."""

    def of_margin(self, m):
        return jnp.exp(-m)


class SquareMargin(AbstractMarginLoss):
    """(1/2)(1 - m)^2, the square loss (1/2)(f - y)^2 written in the margin (y^2 = 1)."""

    def of_margin(self, m):
        return 0.5 * (1.0 - m) ** 2


class PolynomialTail(AbstractMarginLoss):
    """Polynomially tailed loss (Wang, Chatterji, Haque & Hashimoto 2022): the logistic loss
    rescaled to 1 at m = 1, log(1 + e^-m) / log(1 + e^-1), for m <= 1, and m^(-alpha) beyond.

    **Arguments:**

    - `alpha`: the tail's exponent, > 0; an array leaf, so a sweep over it compiles once.
    """

    alpha: Float[Array, ""]

    def __init__(self, alpha=1.0):
        _validate.number("alpha", alpha, low=0.0, low_open=True)
        if np.ndim(alpha):
            raise ValueError(f"`alpha` has shape {np.shape(alpha)}, expected a scalar.")
        self.alpha = jnp.asarray(alpha)

    def of_margin(self, m):
        logistic = jnp.logaddexp(0.0, -m) / jnp.logaddexp(0.0, -1.0)
        # Keep the unused branch finite so that its gradient is not NaN.
        tail = jnp.maximum(m, 1.0) ** (-self.alpha)
        return jnp.where(m <= 1.0, logistic, tail)


square = Square()
square_centered = Square(center=True)
cross_entropy = CrossEntropy()
logistic = Logistic()
exponential = Exponential()
square_margin = SquareMargin()


