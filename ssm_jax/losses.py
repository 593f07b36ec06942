"""Per-example losses and their weighted means.

Losses are small Equinox modules, so that their parameters (the polynomial tail's alpha)
are array leaves a sweep can vary without recompiling. Each maps outputs and labels to one
loss per example; the `Objective` takes the weighted mean.

- Class losses act on logits (n, k) and integer labels in 0..k-1.
- Margin losses act on one output per example, (n,) or (n, 1), and labels in {-1, +1}, through
  the margin m_i = y_i f(x_i).

Each loss also defines `progress`: how far an example's correct-class output has gone from
its value at zero outputs to its fitted value (0 at the start, 1 when fit). A class's learning
time is the first time its mean progress reaches 1/2.
"""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int


class AbstractLoss(eqx.Module):
    @abc.abstractmethod
    def __call__(self, outputs: Array, labels: Array) -> Float[Array, " n"]:
        """One loss value per example."""

    @abc.abstractmethod
    def progress(self, outputs: Array, labels: Array) -> Float[Array, " n"]:
        """How far each example is from zero output (0) to fit (1)."""


class Square(AbstractLoss):
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
        correct = jnp.take_along_axis(outputs, labels[:, None], axis=-1)[:, 0]
        return correct / (1.0 - 1.0 / k) if self.center else correct


class CrossEntropy(AbstractLoss):
    """-log softmax(z)_y. Progress is the correct-class probability, rescaled from chance 1/k."""

    def __call__(self, outputs: Float[Array, "n k"], labels: Int[Array, " n"]):
        logp = jax.nn.log_softmax(outputs, axis=-1)
        return -jnp.take_along_axis(logp, labels[:, None], axis=-1)[:, 0]

    def progress(self, outputs, labels):
        k = outputs.shape[-1]
        p = jnp.exp(-self(outputs, labels))
        return (p - 1.0 / k) / (1.0 - 1.0 / k)


class AbstractMarginLoss(AbstractLoss):
    """A loss of the margin m = y f(x) for binary labels y in {-1, +1}."""

    @abc.abstractmethod
    def of_margin(self, margins: Float[Array, " n"]) -> Float[Array, " n"]:
        """The loss as a function of the margin."""

    def __call__(self, outputs, labels):
        return self.of_margin(margins(outputs, labels))

    def progress(self, outputs, labels):
        # Margin losses have no finite fit; a margin of 1 is the conventional "learned".
        return margins(outputs, labels)


def margins(outputs, labels):
    """m_i = y_i f(x_i) for one output per example."""
    return jnp.reshape(outputs, labels.shape) * labels


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
    rescaled to 1 at m = 1, log(1 + e^-m) / log(1 + e^-1), for m <= 1, and m^(-alpha) beyond."""

    alpha: Float[Array, ""] = eqx.field(converter=jnp.asarray, default=1.0)

    def __check_init__(self):
        from . import _validate

        _validate.number("alpha", self.alpha, low=0.0, low_open=True)

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


def weighted_mean(values: Float[Array, " n"], weights: Float[Array, " n"]):
    """(1/n) sum_i q_i l_i. Dividing by n (not by sum q) keeps the time scale of the flow
    comparable across weightings; weights are normalized to mean one where that is wanted."""
    return jnp.sum(weights * values) / values.shape[0]


def l2_penalty(tree) -> Float[Array, ""]:
    """(1/2) |theta|^2 over every floating-point array in `tree`."""
    leaves = jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_inexact_array))
    return 0.5 * sum(jnp.sum(leaf**2) for leaf in leaves)
