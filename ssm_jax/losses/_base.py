"""The loss interface and the two label conventions every loss builds on.

- Class losses (`AbstractClassLoss`) act on logits (n, k) and integer labels in 0..k-1;
  padding carries label -1.
- Binary losses (`AbstractBinaryLoss`) act on one output per example, (n,) or (n, 1), and
  labels in {-1, +1}; padding carries label 0. Margin losses (`AbstractMarginLoss`) are the
  binary losses that are a function of the margin m_i = y_i f(x_i) alone.
"""

import abc
import dataclasses
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int
import numpy as np

from .. import _validate


class AbstractLoss(eqx.Module):
    """A per-example loss together with the label convention it reads.

    A new loss provides:

    - `__call__(outputs, labels)`: one loss value per example;
    - `progress(outputs, labels)`: how far each example has gone from zero outputs (0) to fit
      (1), from which learning times are read;
    - its label convention: `check_labels` (which labels are allowed and how many classes they
      imply), `class_index` (the class 0..k-1 the per-class metrics file an example under),
      `padding_label`, `correct` and `correct_output`;
    - `square_targets(num_classes)`: the per-class targets where it is the square loss of the
      outputs, None otherwise (what exact reductions of the square-loss flow ask for).

    Subclass `AbstractClassLoss` (logits and class indices) or `AbstractBinaryLoss` (one output
    and labels -1/+1), which supply the label convention, rather than this class.
    """

    padding_label: eqx.AbstractClassVar[int]
    """The label of a padded example: one that belongs to no class."""

    @abc.abstractmethod
    def __call__(self, outputs: Array, labels: Array) -> Float[Array, " n"]:
        """One loss value per example.

        **Arguments:**

        - `outputs`: the model's outputs, one row per example.
        - `labels`: one label per example.

        **Returns:** the losses, (n,).
        """

    @abc.abstractmethod
    def progress(self, outputs: Array, labels: Array) -> Float[Array, " n"]:
        """How far each example is from zero output (0) to fit (1); arguments as for the loss.
        """

    @abc.abstractmethod
    def check_labels(self, labels: np.ndarray, num_classes: int | None = None) -> int:
        """Checks concrete labels against the loss's convention, raising a `ValueError` on
        any other.

        **Arguments:**

        - `labels`: one label per example, (n,).
        - `num_classes`: k, or None to infer it from the labels.

        **Returns:** the number of classes k.
        """

    @abc.abstractmethod
    def check_outputs(self, shape: tuple[int, ...], num_classes: int) -> None:
        """Checks the shape of a model's outputs against the loss's convention, raising a
        `ValueError` that names both on any other.

        **Arguments:**

        - `shape`: the outputs' shape, one row per example.
        - `num_classes`: k, as `check_labels` returned it.
        """

    @abc.abstractmethod
    def class_index(self, labels: Array) -> Int[Array, " n"]:
        """The class 0..k-1 of each label, as the per-class metrics index it; -1 for padding."""

    @abc.abstractmethod
    def correct_output(self, outputs: Array, labels: Array) -> Float[Array, " n"]:
        """The output that measures each example's fit: its correct-class output or its
        margin; 0 for padding."""

    @abc.abstractmethod
    def correct(self, outputs: Array, labels: Array) -> Bool[Array, " n"]:
        """Whether each example is classified correctly; False for padding."""

    @abc.abstractmethod
    def square_targets(self, num_classes: int, dtype=None) -> Float[Array, "k k"] | None:
        """The targets t_c where this loss is the square loss (1/2)|z - t_y|^2 of logits z,
        with a target that depends on the class alone; None for any other loss.

        Its gradient in the outputs is then z - t_y, affine with one offset per class, which
        is what exact reductions of the flow (class-affine coordinates) rely on.

        **Arguments:**

        - `num_classes`: k.
        - `dtype`: the targets' dtype; default the default floating dtype.

        **Returns:** the targets, one row per class, (k, k); or None.
        """


def correct_class_outputs(outputs: Float[Array, "n k"], labels: Int[Array, " n"]):
    """z_{y_i} for each example (0 for padding, label -1)."""
    index = jnp.clip(labels, 0)[:, None]
    return jnp.where(labels >= 0, jnp.take_along_axis(outputs, index, axis=-1)[:, 0], 0.0)


def margins(outputs, labels):
    """m_i = y_i f(x_i) for one output per example (0 for padding, label 0)."""
    return jnp.reshape(outputs, labels.shape) * labels


def per_class(**kwargs):
    """A field of a class loss with one entry per class (its last axis), which `check_labels`
    holds to the number of classes: `delta: Float[Array, " k"] = per_class()`."""
    return eqx.field(metadata={"per_class": True}, **kwargs)


class AbstractClassLoss(AbstractLoss):
    """A loss of logits (n, k) and class indices 0..k-1; padding carries label -1.

    Parameters with one entry per class are declared with `per_class()`, so that labels of
    another number of classes are refused before compute.
    """

    padding_label: ClassVar[int] = -1

    def check_labels(self, labels, num_classes=None):
        labels = np.asarray(labels)
        if num_classes is None:
            num_classes = int(labels.max()) + 1 if labels.size else 0
        _validate.integer("num_classes", num_classes, minimum=2)
        _validate.labels("labels", labels, num_classes)
        for field in dataclasses.fields(self):
            shape = np.shape(getattr(self, field.name))
            if field.metadata.get("per_class") and shape[-1:] != (num_classes,):
                raise ValueError(f"`{field.name}` of {type(self).__name__} has shape {shape}, "
                                 f"but the labels have {num_classes} classes: expected "
                                 f"({num_classes},), one entry per class.")
        return num_classes

    def check_outputs(self, shape, num_classes):
        if len(shape) != 2 or shape[1] != num_classes:
            raise ValueError(f"`model` gives outputs of shape {tuple(shape)}, but the labels "
                             f"have {num_classes} classes: a class loss needs logits (n, "
                             f"{num_classes}), one column per class.")

    def class_index(self, labels):
        return labels

    def correct_output(self, outputs, labels):
        return correct_class_outputs(outputs, labels)

    def correct(self, outputs, labels):
        return jnp.argmax(outputs, axis=-1) == labels


class AbstractBinaryLoss(AbstractLoss):
    """A loss of one output f(x) per example and binary labels y in {-1, +1}.

    Class index 0 is the -1 class and 1 the +1 class; padding carries label 0, whose margin
    y f(x) is 0 whatever the output.
    """

    padding_label: ClassVar[int] = 0

    def progress(self, outputs, labels):
        # Margin losses have no finite fit; a margin of 1 is the conventional "learned".
        return margins(outputs, labels)

    def check_labels(self, labels, num_classes=None):
        labels = np.asarray(labels)
        if num_classes not in (None, 2):
            raise ValueError(f"`num_classes` = {num_classes!r} is not allowed: a margin loss has "
                             "two classes (None or 2).")
        if labels.ndim != 1:
            raise ValueError(f"`labels` has shape {labels.shape}, expected (n,).")
        outside = ~np.isin(labels, (-1, 1))
        if np.any(outside):
            raise ValueError(f"`labels` = {labels[outside][:8]} is not allowed: a margin loss "
                             "needs labels in {-1, +1}.")
        return 2

    def check_outputs(self, shape, num_classes):
        if len(shape) not in (1, 2) or shape[1:] not in ((), (1,)):
            raise ValueError(f"`model` gives outputs of shape {tuple(shape)}, but a margin loss "
                             "needs one output per example: (n,) or (n, 1).")

    def class_index(self, labels):
        return jnp.where(labels == 0, -1, jnp.where(labels > 0, 1, 0))

    def correct_output(self, outputs, labels):
        return margins(outputs, labels)

    def correct(self, outputs, labels):
        return margins(outputs, labels) > 0

    def square_targets(self, num_classes, dtype=None):
        # One output per example, not one per class: no class loss's targets.
        return None


class AbstractMarginLoss(AbstractBinaryLoss):
    """A binary loss that is a function of the margin m = y f(x) alone, through `of_margin`."""

    @abc.abstractmethod
    def of_margin(self, margins: Float[Array, " n"]) -> Float[Array, " n"]:
        """The loss as a function of the margin."""

    def __call__(self, outputs, labels):
        return self.of_margin(margins(outputs, labels))


def weighted_mean(values: Float[Array, " n"], weights: Float[Array, " n"]):
    """(1/n) sum_i q_i l_i. Dividing by n (not by sum q) keeps the time scale of the flow
    comparable across weightings; weights are normalized to mean one where that is wanted."""
    return jnp.sum(weights * values) / values.shape[0]


def l2_penalty(tree) -> Float[Array, ""]:
    """(1/2) |theta|^2 over every floating-point array in `tree`."""
    leaves = jax.tree_util.tree_leaves(eqx.filter(tree, eqx.is_inexact_array))
    return 0.5 * sum(jnp.sum(leaf**2) for leaf in leaves)
