"""Objectives: a model and its data, loss, weights and regularization, as one scalar function
of the parameters, plus the metrics recorded along a trajectory.

The two readings of "re-weighting" stand side by side (see docs/theory.md):

- `Objective`, *loss re-weighting*: (1/n) sum_i q_i l(f(x_i); y_i) + (lambda/2)|theta|^2, with
  q_i = omega_{y_i}(t) times any per-example importance weight. Any model and loss; the class
  weights may change with time (`schedules`), and `at(t)` gives the objective at time t.
- `TargetFit`, *target re-weighting*: (1/(2n)) |Z - T|_F^2 + (lambda/2)|theta|^2, the SSM's
  fit of a (re-weighted) target matrix T such as `label_matrix(counts, weights)`.

Their minimizers coincide for the square loss, their gradient flows do not.
Everything numeric is an array leaf, so objectives that differ only in weights, targets or
lambda share one compilation.
"""

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int
import numpy as np

from . import _validate
from .losses import AbstractLoss, correct_class_outputs
from .metrics.per_class import class_means, mode_strengths
from .models import AbstractModel, output_shape, pad_axis
from .schedules import AbstractWeightSchedule, ConstantWeights, weight_schedule


class AbstractObjective(eqx.Module):
    """A scalar function of a model's parameters, and what to record along its flow.

    A new objective provides:

    - `labels`: one label per example (or per target column), (n,);
    - `num_classes`: k, a static integer;
    - `__call__(model)`: the value that gradient flow and the optimizers descend;
    - `metrics(model)`: what a trajectory records, by default;
    - `check_model(model)`: whether a model's outputs fit the objective, from shapes alone.

    An objective that changes with time also overrides `at(t)` and `jump_times()`; the
    defaults describe one that does not. Every numeric field should be an array leaf, so that
    objectives differing only in numbers share one compilation.
    """

    labels: eqx.AbstractVar[Int[Array, " n"]]
    num_classes: eqx.AbstractVar[int]

    @abc.abstractmethod
    def __call__(self, model: AbstractModel) -> Float[Array, ""]:
        """The objective's value.

        **Arguments:**

        - `model`: the model at which to evaluate it.

        **Returns:** a scalar.
        """

    @abc.abstractmethod
    def metrics(self, model: AbstractModel) -> dict[str, Array]:
        """Metrics at `model`.

        **Arguments:**

        - `model`: the model at which to record them.

        **Returns:** a dict of per-class arrays of shape (k,) (`class_accuracy`, `class_loss`,
        `class_output`, `class_progress`) and scalars (`loss`).
        """

    @abc.abstractmethod
    def check_model(self, model: AbstractModel) -> None:
        """Checks that `model`'s outputs fit this objective (one row per example, the columns
        the loss reads), from shapes alone: nothing is computed, and abstract values (under
        `jax.eval_shape`) pass. Raises a `ValueError` naming both counts otherwise.

        **Arguments:**

        - `model`: the model to check.
        """

    @abc.abstractmethod
    def at(self, t) -> "AbstractObjective":
        """The objective at time `t`: what the flow descends at flow time t and discrete
        training at step count t. An objective that does not change with time is itself.

        **Arguments:**

        - `t`: the time, a scalar (flow time, or step count).

        **Returns:** an objective of the same kind that no longer depends on time.
        """

    @abc.abstractmethod
    def jump_times(self) -> Float[Array, " j"]:
        """The times where the objective jumps or kinks, (j,), which the flow steps onto;
        (0,) for an objective that does not change with time (`no_jumps()`)."""


class AbstractPaddableObjective(AbstractObjective):
    """An objective over a set of examples that it can extend with padding, so that sweep
    members of different sizes share one batch and one compilation.

    A new one provides, besides what every objective does, `pad_examples(size)`.
    """

    @abc.abstractmethod
    def pad_examples(self, size: int) -> "AbstractPaddableObjective":
        """This objective with `size` examples, those beyond its own padding: zero weight, a
        label of no class and zero inputs, so that they receive no gradient, add nothing to
        the value and belong to no class in the metrics. Per-class weights (constant or on a
        schedule) stay as they are.

        **Arguments:**

        - `size`: the number of examples after padding, at least the current number.

        **Returns:** an objective of the same type whose per-example arrays have `size`
        entries.
        """


def no_jumps() -> Float[Array, " 0"]:
    """The jump times of an objective that does not change with time: none."""
    return jnp.zeros((0,), dtype=jnp.result_type(float))


def _per_class(num_classes, class_index, loss_values, correct, outputs, progress):
    return {
        "class_accuracy": class_means(correct.astype(outputs.dtype), class_index, num_classes),
        "class_loss": class_means(loss_values, class_index, num_classes),
        "class_output": class_means(outputs, class_index, num_classes),
        "class_progress": class_means(progress, class_index, num_classes),
    }


def _check_l2(l2):
    _validate.number("l2", l2, low=0.0)
    return jnp.asarray(l2, dtype=jnp.result_type(float))


class Objective(AbstractPaddableObjective):
    """Weighted empirical risk (loss re-weighting).

    **Arguments:**

    - `labels`: (n,) as the loss reads them: class indices 0..k-1 for a class loss, -1/+1 for a
      margin loss.
    - `loss`: an `AbstractLoss`, e.g. `losses.square`, `losses.cross_entropy`, `losses.LDAM`.
    - `class_weights`: omega_c, (k,), e.g. `class_weights(counts, power)`, or a schedule
      omega_c(t) (`schedules.SwitchedWeights`, `schedules.RampedWeights`). Default all ones.
    - `example_weights`: extra per-example (importance) weights, (n,). Default all ones.
    - `inputs`: data (n, p) for models acting on inputs; None for free-feature models.
    - `l2`: lambda >= 0, the L2 strength on every parameter.
    - `num_classes`: k; default: inferred from the labels (2 for margin losses).

    With a schedule the objective depends on time: the dynamics descend `at(t)`, and calling
    it (or its `metrics`) directly asks for `at(t)` first.

    `metrics` records the per-class means of accuracy, loss, output (the correct-class output,
    or the margin) and progress, with classes indexed by `loss.class_index`, and the loss.
    """

    labels: Int[Array, " n"]
    loss: AbstractLoss
    class_weights: AbstractWeightSchedule
    example_weights: Float[Array, " n"]
    inputs: Array | None
    l2: Float[Array, ""]
    num_examples: Float[Array, ""]
    num_classes: int = eqx.field(static=True)

    def __init__(self, labels, loss: AbstractLoss, class_weights=None, example_weights=None,
                 inputs=None, l2=0.0, num_classes=None):
        if not isinstance(loss, AbstractLoss):
            raise ValueError(f"`loss` = {loss!r} is not allowed: expected an AbstractLoss such "
                             "as ssm_jax.losses.square or ssm_jax.losses.cross_entropy.")
        labels_np = np.asarray(labels)
        if labels_np.shape[:1] == (0,):
            raise ValueError(f"`labels` has shape {labels_np.shape}: expected at least one "
                             "example.")
        num_classes = loss.check_labels(labels_np, num_classes)
        n = labels_np.shape[0]
        self.labels = jnp.asarray(labels_np)
        self.loss = loss
        self.num_classes = num_classes
        self.class_weights = weight_schedule(class_weights, num_classes)
        q = jnp.ones(n, dtype=jnp.result_type(float))
        if example_weights is not None:
            _validate.shape("example_weights", example_weights, (n,), "one weight per example")
            _validate.number("example_weights", example_weights, low=0.0)
            q = q * jnp.asarray(example_weights)
        # Every weighting the schedule moves between must leave some example a weight.
        sets = self.class_weights.weight_sets()
        if _validate.is_concrete((q, sets)) and not all(
                np.any(np.asarray(omega[loss.class_index(self.labels)] * q) > 0)
                for omega in sets):
            raise ValueError("The example weights (`class_weights` times `example_weights`) "
                             "are all zero: at least one example needs a positive weight.")
        self.example_weights = q
        if inputs is not None:
            if np.ndim(inputs) < 1 or np.shape(inputs)[0] != n:
                raise ValueError(f"`inputs` has shape {np.shape(inputs)}, expected one row per "
                                 f"label ({n}, ...).")
            _validate.number("inputs", inputs)
        self.inputs = None if inputs is None else jnp.asarray(inputs)
        self.l2 = _check_l2(l2)
        self.num_examples = jnp.asarray(n, dtype=q.dtype)

    def at(self, t):
        t = jnp.asarray(t, dtype=self.example_weights.dtype)
        return eqx.tree_at(lambda o: o.class_weights, self,
                           ConstantWeights(self.class_weights(t)))

    def jump_times(self):
        return self.class_weights.jump_times()

    def weights(self) -> Float[Array, " n"]:
        """q_i = omega_{y_i} times the example weight of each example, (n,); 0 for padding.
        Raises a `ValueError` where the class weights change with time: use `at(t).weights()`.
        """
        if not isinstance(self.class_weights, ConstantWeights):
            raise ValueError(f"`class_weights` = {type(self.class_weights).__name__} changes "
                             "with time: evaluate the objective at a time, `objective.at(t)`, "
                             "as the dynamics do.")
        # Padding (class -1) picks some class's weight, but its example weight is zero.
        omega = self.class_weights.weights[self.loss.class_index(self.labels)]
        return omega * self.example_weights

    def __call__(self, model):
        data_fit = jnp.sum(self.weights() * self.loss(model(self.inputs), self.labels))
        return data_fit / self.num_examples + self.l2 * model.l2_penalty()

    def check_model(self, model):
        shape = output_shape(model, self.inputs)
        n = self.labels.shape[0]
        if shape[:1] != (n,):
            raise ValueError(f"`model` gives outputs for {shape[0] if shape else 0} examples "
                             f"(shape {shape}), but the objective has {n} labels: expected one "
                             "row of outputs per label.")
        self.loss.check_outputs(shape, self.num_classes)

    def metrics(self, model):
        outputs = model(self.inputs)
        loss, labels = self.loss, self.labels
        out = _per_class(self.num_classes, loss.class_index(labels), loss(outputs, labels),
                         loss.correct(outputs, labels), loss.correct_output(outputs, labels),
                         loss.progress(outputs, labels))
        out["loss"] = self(model)
        return out

    def pad_examples(self, size):
        labels = pad_axis(self.labels, size, 0, self.loss.padding_label)
        weights = pad_axis(self.example_weights, size, 0)
        inputs = None if self.inputs is None else pad_axis(self.inputs, size, 0)
        return eqx.tree_at(lambda o: (o.labels, o.example_weights, o.inputs), self,
                           (labels, weights, inputs), is_leaf=lambda x: x is None)

    def minibatch(self, key, batch_size: int) -> "Objective":
        """The objective on a random batch, an unbiased estimate of the full objective: zero
        weight on the examples not drawn and n/B on the B drawn, so that the shapes (and the
        compilation) stay those of the full objective.

        **Arguments:**

        - `key`: a JAX random key that draws the batch.
        - `batch_size`: B, 1 <= B <= n, drawn without replacement.

        **Returns:** an `Objective` of the same shapes with re-scaled example weights.
        """
        n = self.labels.shape[0]
        batch_size = _validate.integer("batch_size", batch_size, minimum=1)
        if batch_size > n:
            raise ValueError(f"`batch_size` = {batch_size} is not allowed: expected "
                             f"1 <= batch_size <= n = {n}, the number of examples.")
        chosen = jax.random.permutation(key, n)[:batch_size]
        scale = jnp.zeros(n, self.example_weights.dtype).at[chosen].set(n / batch_size)
        return eqx.tree_at(lambda o: o.example_weights, self, self.example_weights * scale)


class TargetFit(AbstractPaddableObjective):
    """Fit of a target matrix by the model's output matrix Z = outputs^T (target re-weighting).

    **Arguments:**

    - `target`: T, (k, m), e.g. `label_matrix(counts, weights)` or `class_label_matrix(...)`.
    - `labels`: the class of each column, (m,); default: the row of each column's largest entry.
    - `num_examples`: n in the 1/(2n) normalization; default m. Give the true n with a
      class-level target so that time runs as in the example-level model.
    - `l2`: lambda >= 0, the L2 strength on every parameter.
    - `modes`: (U, s, V), the target's singular triplets along which `mode_strength` is
      measured; default from an SVD. Pass them where equal singular values leave the SVD's
      basis arbitrary, e.g. one mode per class (`analytic.class_modes`).
    """

    target: Float[Array, "k m"]
    labels: Int[Array, " m"]
    num_examples: Float[Array, ""]
    l2: Float[Array, ""]
    modes: tuple[Array, Array, Array]
    num_classes: int = eqx.field(static=True)

    def __init__(self, target, labels=None, num_examples=None, l2=0.0, modes=None):
        if jnp.ndim(target) != 2 or 0 in jnp.shape(target):
            raise ValueError(f"`target` has shape {jnp.shape(target)}, expected a matrix (k, m) "
                             "with k, m >= 1.")
        _validate.number("target", target)
        k, m = jnp.shape(target)
        self.target = jnp.asarray(target, dtype=jnp.result_type(float))
        self.num_classes = k
        if labels is None:
            labels = jnp.argmax(self.target, axis=0)
        else:
            _validate.shape("labels", labels, (m,), "one label per target column")
            _validate.labels("labels", labels, k)
        self.labels = jnp.asarray(labels)
        if num_examples is None:
            num_examples = m
        _validate.number("num_examples", num_examples, low=0.0, low_open=True)
        self.num_examples = jnp.asarray(num_examples, dtype=self.target.dtype)
        self.l2 = _check_l2(l2)
        if modes is None:
            U, s, Vt = jnp.linalg.svd(self.target, full_matrices=False)
            modes = (U, s, Vt.T)
        if not isinstance(modes, (tuple, list)) or len(modes) != 3:
            raise ValueError(f"`modes` = {modes!r} is not allowed: expected the triplets "
                             "(U, s, V), e.g. analytic.class_modes(counts).")
        U, s, V = modes
        _validate.shape("modes[0]", U, (k, jnp.shape(s)[0]), "U, one column per mode")
        _validate.shape("modes[2]", V, (m, jnp.shape(s)[0]), "V, one column per mode")
        self.modes = tuple(jnp.asarray(x, dtype=self.target.dtype) for x in (U, s, V))

    def __call__(self, model):
        residual = model().T - self.target
        return 0.5 * jnp.sum(residual**2) / self.num_examples + self.l2 * model.l2_penalty()

    def check_model(self, model):
        shape = output_shape(model)
        k, m = self.target.shape
        if shape != (m, k):
            raise ValueError(f"`model` gives outputs of shape {shape}, but the target has "
                             f"shape ({k}, {m}): expected outputs ({m}, {k}), one row per "
                             f"target column ({m}) and one column per target row ({k}).")

    def at(self, t):
        return self  # the target does not change with time

    def pad_examples(self, size):
        # Padding columns: zero target, label -1 (no class), zero rows of V (outside every mode).
        U, s, V = self.modes
        return eqx.tree_at(lambda o: (o.target, o.labels, o.modes), self,
                           (pad_axis(self.target, size, 1), pad_axis(self.labels, size, 0, -1),
                            (U, s, pad_axis(V, size, 0))))

    def jump_times(self):
        return no_jumps()

    def metrics(self, model):
        Z = model().T
        values = 0.5 * jnp.sum((Z - self.target) ** 2, axis=0)
        correct_outputs = correct_class_outputs(Z.T, self.labels)
        correct_targets = correct_class_outputs(self.target.T, self.labels)
        correct = jnp.argmax(Z, axis=0) == self.labels
        out = _per_class(self.num_classes, self.labels, values, correct, correct_outputs,
                         correct_outputs / correct_targets)
        U, s, V = self.modes
        out["mode_strength"] = mode_strengths(Z, U, V)
        out["loss"] = self(model)
        return out
