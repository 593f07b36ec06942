"""Training the digits networks (`models.networks`) with optax: SGD with or without momentum,
full batch or minibatch, class or per-example importance weights, L2; recording per-class
train and test accuracy and loss, predicted-class fractions, and the singular values of the
class-mean penultimate features every few steps.

The networks train through `Train`, the package's one trainer: `NetworkObjective` owns what
is particular to them (each step a batch gathered from the images and fresh dropout masks;
evaluation with batch-norm statistics of the training set), and the optimizer's learning
rate, momentum and L2 are per-run hyperparameters. `run_network` is one run, traceable;
`experiments.network_runs.train_networks` runs a stack of them (seeds and settings) through
the sweeps' batching, so a grid of runs compiles once.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int
import numpy as np
import optax

from .. import _validate
from .._timing import timed_call
from ..losses import CrossEntropy
from ..models import output_shape
from ..models.networks import AbstractNetwork
from ..objective import AbstractObjective, no_jumps
from .base import objective_metrics
from .discrete import Train


class NetworkData(eqx.Module):
    """Images and labels a network trains and is evaluated on.

    **Arguments:**

    - `x_train`, `y_train`: training images (n, h, w) or (n, channels, h, w) and labels in 0..k-1.
    - `x_test`, `y_test`: test images and labels.
    - `num_classes`: k.
    - `x_probe`, `probe_group`: optional probe images (e.g. digits the network never saw) and
      their group in 0..G-1; for each group the fraction predicted as each class is recorded.
    """

    x_train: Float[Array, "n ..."]
    y_train: Int[Array, " n"]
    x_test: Float[Array, "m ..."]
    y_test: Int[Array, " m"]
    num_classes: int = eqx.field(static=True)
    x_probe: Float[Array, "p ..."] | None = None
    probe_group: Int[Array, " p"] | None = None
    num_groups: int = eqx.field(static=True, default=0)

    def __check_init__(self):
        _validate.integer("num_classes", self.num_classes, minimum=2)
        for name in ("y_train", "y_test"):
            _validate.labels(name, getattr(self, name), self.num_classes)
        images = np.shape(self.x_train)[1:]
        pairs = [("x_train", "y_train"), ("x_test", "y_test")]
        if self.x_probe is not None:
            pairs.append(("x_probe", "probe_group"))
            _validate.integer("num_groups", self.num_groups, minimum=1)
            _validate.labels("probe_group", self.probe_group, self.num_groups)
        for x, y in pairs:
            x_shape, y_shape = np.shape(getattr(self, x)), np.shape(getattr(self, y))
            if x_shape[:1] != y_shape or x_shape[:1] == (0,):
                raise ValueError(f"`{x}` has shape {x_shape} and `{y}` has shape {y_shape}: "
                                 "expected at least one image and one label per image.")
            if x_shape[1:] != images:
                raise ValueError(f"`{x}` holds images of shape {x_shape[1:]}, but `x_train` "
                                 f"holds {images}: expected images of one shape.")
            _validate.number(x, getattr(self, x))

    @classmethod
    def from_split(cls, split) -> "NetworkData":
        """From a `data.images.ImageSplit`; probe classes become groups in increasing order."""
        dtype = jnp.result_type(float)
        probe, group, num_groups = None, None, 0
        if split.x_probe is not None:
            classes, group = np.unique(split.probe_class, return_inverse=True)
            probe, group, num_groups = jnp.asarray(split.x_probe, dtype), jnp.asarray(group), \
                classes.size
        return cls(jnp.asarray(split.x_train, dtype), jnp.asarray(split.y_train),
                   jnp.asarray(split.x_test, dtype), jnp.asarray(split.y_test),
                   split.num_classes, probe, group, num_groups)


class TrainSetting(eqx.Module):
    """What a sweep varies, all array leaves (one compilation serves every value): per-example
    loss weights, learning rate, momentum (0: plain SGD), L2 strength and dropout rate.
    Build it with `training_setting`."""

    example_weights: Float[Array, " n"]
    learning_rate: Float[Array, ""]
    momentum: Float[Array, ""]
    l2: Float[Array, ""]
    dropout: Float[Array, ""]


def training_setting(labels, num_classes: int, *, class_weights=None, importance_weights=None,
                     learning_rate=0.1, momentum=0.0, l2=0.0, dropout=0.0) -> TrainSetting:
    """A `TrainSetting` for training labels `labels`.

    **Arguments:**

    - `labels`: the training labels (n,), in 0..k-1.
    - `num_classes`: k.
    - `class_weights`: omega_c (k,), e.g. `imbalance.class_weights(counts, gamma)`; None is 1.
    - `importance_weights`: a weight per example (n,), multiplied into the class weights.
    - `learning_rate`: the SGD step.
    - `momentum`: heavy-ball momentum in [0, 1); 0 is plain SGD.
    - `l2`: lambda of the penalty (lambda/2)|theta|^2 on every trainable array.
    - `dropout`: the dropout rate in [0, 1); 0 is off.

    The per-example weights are scaled to mean 1, which keeps step sizes comparable across
    weightings (docs/theory.md, Section 2).

    **Returns:** the `TrainSetting`.
    """
    labels = _validate.labels("labels", labels, num_classes)
    n = labels.size
    weights = np.ones(n)
    if class_weights is not None:
        _validate.shape("class_weights", class_weights, (num_classes,), "one weight per class")
        _validate.number("class_weights", class_weights, low=0.0)
        weights = weights * np.asarray(class_weights, dtype=float)[labels]
    if importance_weights is not None:
        _validate.shape("importance_weights", importance_weights, (n,),
                        "one weight per training example")
        _validate.number("importance_weights", importance_weights, low=0.0)
        weights = weights * np.asarray(importance_weights, dtype=float)
    if not np.any(weights > 0):
        raise ValueError("the example weights are all zero: at least one must be positive.")
    _validate.number("learning_rate", learning_rate, low=0.0, low_open=True)
    _validate.number("momentum", momentum, low=0.0, high=1.0, high_open=True)
    _validate.number("l2", l2, low=0.0)
    _validate.number("dropout", dropout, low=0.0, high=1.0, high_open=True)
    dtype = jnp.result_type(float)
    scalar = lambda v: jnp.asarray(v, dtype)  # noqa: E731
    return TrainSetting(jnp.asarray(weights / weights.mean(), dtype), scalar(learning_rate),
                        scalar(momentum), scalar(l2), scalar(dropout))


def stack(trees):
    """Stacks pytrees of the same structure along a new leading axis (settings for
    `train_networks`)."""
    return jax.tree_util.tree_map(lambda *leaves: jnp.stack(leaves), *trees)


def init_networks(make, keys):
    """`make(key)` for each key, stacked along a leading axis, e.g.
    `init_networks(lambda k: MLP(10, key=k), jax.random.split(key, 4))`. Compiled as one
    program: run eagerly, each initializer's operations would compile one by one."""
    return eqx.filter_jit(eqx.filter_vmap(make))(keys)


class NetworkRun(eqx.Module):
    """A recorded training run (or a stack of them, with a leading run axis on every array).

    - `steps`: the steps at which metrics were recorded (T,).
    - `metrics`: `train_accuracy`, `train_loss`, `test_accuracy`, `test_loss` (T, k);
      `test_predicted` (T, k, k), the fraction of test images of class c predicted as class j;
      `feature_spectrum` (T, min(k, d)), the singular values of the centred class-mean
      penultimate features of the training set; with probes `probe_predicted` (T, G, k).
      Losses are unweighted cross-entropy; weights act on training only.
    - `final`: the trained network.
    - `compile_seconds`, `run_seconds`: wall time, split.
    """

    steps: Array
    metrics: dict
    final: AbstractNetwork
    compile_seconds: float
    run_seconds: float


def _fractions(predicted, groups, num_groups, num_classes):
    """(G, k): the fraction of each group's examples predicted as each class."""
    onehot_group = jax.nn.one_hot(groups, num_groups)
    onehot_pred = jax.nn.one_hot(predicted, num_classes)
    return (onehot_group.T @ onehot_pred) / jnp.sum(onehot_group, axis=0)[:, None]


class NetworkObjective(AbstractObjective):
    """The weighted cross-entropy a digits network trains on, and what it records.

    `minibatch` gives the objective one SGD step descends: a batch gathered from the images
    (batch norm normalizes with the batch, so zero-weighting the others would change its
    statistics) and fresh dropout masks. `metrics` evaluates with batch-norm statistics of the
    whole training set, passed to the network explicitly.

    **Arguments:**

    - `data`: a `NetworkData`.
    - `example_weights`: one loss weight per training image, (n,).
    - `dropout`: the dropout rate during training steps, in [0, 1).
    """

    data: NetworkData
    example_weights: Float[Array, " n"]
    dropout: Float[Array, ""]
    dropout_key: Array | None = None
    batch: Int[Array, " b"] | None = None

    @property
    def labels(self):
        return self.data.y_train

    @property
    def num_classes(self):
        return self.data.num_classes

    def minibatch(self, key, batch_size: int) -> "NetworkObjective":
        """The objective of one step: `batch_size` images drawn without replacement with
        `key` (all of them, in order, when batch_size = n) and a dropout key."""
        batch_key, dropout_key = jax.random.split(key)
        n = self.labels.shape[0]
        batch = None if batch_size == n else jax.random.permutation(batch_key, n)[:batch_size]
        return eqx.tree_at(lambda o: (o.dropout_key, o.batch), self, (dropout_key, batch),
                           is_leaf=lambda x: x is None)

    def __call__(self, model):
        x, y, q = self.data.x_train, self.data.y_train, self.example_weights
        if self.batch is not None:
            x, y, q = x[self.batch], y[self.batch], q[self.batch]
        logits = model(x, dropout=self.dropout, key=self.dropout_key)
        # The batch mean of q_i l_i estimates (1/n) sum_i q_i l_i without bias.
        return jnp.mean(q * CrossEntropy()(logits, y))

    def check_model(self, model):
        check_network(model, self.data)

    def at(self, t):
        return self  # its weights do not change with time

    def jump_times(self):
        return no_jumps()

    def metrics(self, model):
        return _record(model, self.data)


def check_network(network, data: NetworkData) -> None:
    """Checks, from shapes alone, that `network` maps `data`'s images to one logit per class.

    **Arguments:**

    - `network`: one network (not a stack).
    - `data`: a `NetworkData`.
    """
    try:  # evaluated on shapes alone: a mismatch is a shape error, named here
        shape = output_shape(network, data.x_train)
    except (ValueError, TypeError) as error:
        raise ValueError(f"`network` cannot take the training images, of shape "
                         f"{data.x_train.shape[1:]} each: build it for these images (e.g. "
                         f"`image_shape`) ({error})") from None
    expected = (data.y_train.shape[0], data.num_classes)
    if shape != expected:
        raise ValueError(f"`network` gives outputs of shape {shape} on the {expected[0]} "
                         f"training images, but the data have {data.num_classes} classes: "
                         f"expected logits {expected}, one column per class.")


def _record(network, data: NetworkData):
    k = data.num_classes
    statistics = network.statistics(data.x_train)
    loss = CrossEntropy()

    def evaluate(x, y):
        logits = network(x, statistics=statistics)
        features = network.features(x, statistics=statistics)
        onehot = jax.nn.one_hot(y, k)
        counts = jnp.sum(onehot, axis=0)
        per_class = lambda v: (onehot.T @ v) / counts  # noqa: E731
        predicted = jnp.argmax(logits, axis=-1)
        correct = (predicted == y).astype(logits.dtype)
        return (per_class(correct), per_class(loss(logits, y)),
                _fractions(predicted, y, k, k), (onehot.T @ features) / counts[:, None])

    train_acc, train_loss, _, class_features = evaluate(data.x_train, data.y_train)
    test_acc, test_loss, test_predicted, _ = evaluate(data.x_test, data.y_test)
    centred = class_features - jnp.mean(class_features, axis=0)
    recorded = {
        "train_accuracy": train_acc, "train_loss": train_loss,
        "test_accuracy": test_acc, "test_loss": test_loss, "test_predicted": test_predicted,
        "feature_spectrum": jnp.linalg.svd(centred, compute_uv=False),
    }
    if data.x_probe is not None:
        logits = network(data.x_probe, statistics=statistics)
        recorded["probe_predicted"] = _fractions(jnp.argmax(logits, axis=-1), data.probe_group,
                                                 data.num_groups, k)
    return recorded


def sgd_with_l2(learning_rate, momentum, l2):
    """SGD with heavy-ball momentum and L2 as decoupled weight decay (lambda theta added to
    the gradient): the digits networks' optimizer, a function of its array hyperparameters."""
    return optax.chain(optax.add_decayed_weights(l2), optax.sgd(learning_rate, momentum))


def run_network(network, data: NetworkData, setting: TrainSetting, key, dynamics: Train):
    """One network's training run, traceable (a batch of runs vmaps it).

    **Arguments:**

    - `network`: an `MLP` or `CNN`; its floating-point arrays are trained.
    - `data`: a `NetworkData`.
    - `setting`: a `TrainSetting`.
    - `key`: draws dropout masks and minibatches.
    - `dynamics`: from `network_dynamics`.

    **Returns:** (recorded metrics, the trained network).
    """
    params, static = eqx.partition(network, eqx.is_inexact_array)
    objective = NetworkObjective(data, setting.example_weights, setting.dropout)
    hyperparameters = {"learning_rate": setting.learning_rate, "momentum": setting.momentum,
                       "l2": setting.l2}
    recorded, final, _ = dynamics.run(params, static, objective, key, objective_metrics,
                                      hyperparameters=hyperparameters)
    return recorded, eqx.combine(final, static)


_run = eqx.filter_jit(run_network)


def network_dynamics(data: NetworkData, steps: int, record_every: int,
                     batch_size: int | None, precision: str) -> Train:
    """The trainer of the digits networks: `sgd_with_l2` for `steps` steps, each on a batch of
    `batch_size` images (all n for None), recording every `record_every` steps.

    **Arguments:** as for `train_network`.

    **Returns:** a `Train`. Raises `ValueError` for a batch larger than the training set.
    """
    n = data.y_train.shape[0]
    if batch_size is not None:
        batch_size = _validate.integer("batch_size", batch_size, minimum=1)
        if batch_size > n:
            raise ValueError(f"`batch_size` = {batch_size} is not allowed: expected "
                             f"1 <= batch_size <= {n}, the number of training images.")
    # Every step draws its dropout masks through `minibatch`; a full batch is all n images.
    return Train(sgd_with_l2, steps, record_every=record_every,
                 batch_size=n if batch_size is None else batch_size, precision=precision)


def check_training(network, data: NetworkData, setting: TrainSetting) -> None:
    """Checks a network against the data it is to train on (`check_network`) and the
    setting's example weights against the training set, before any compute.

    **Arguments:**

    - `network`: one network (no run axis).
    - `data`: a `NetworkData`.
    - `setting`: a `TrainSetting`, possibly with a leading run axis.

    **Returns:** nothing; raises `ValueError`.
    """
    n = data.y_train.shape[0]
    shape = np.shape(setting.example_weights)
    if shape[-1:] != (n,):
        raise ValueError(f"`setting.example_weights` has shape {shape}: expected one weight "
                         f"per training image, ({n},).")
    check_network(network, data)


def recorded_steps(dynamics: Train):
    """The steps at which `dynamics` records: 0, record_every, ..., steps.

    **Arguments:**

    - `dynamics`: a `Train`.

    **Returns:** an integer array.
    """
    return jnp.arange(0, dynamics.steps + 1, dynamics.record_every)


def train_network(network: AbstractNetwork, data: NetworkData, setting: TrainSetting,
                  steps: int, *, key, record_every: int = 1, batch_size: int | None = None,
                  precision: str = "highest") -> NetworkRun:
    """Trains one network for `steps` optimizer steps.

    **Arguments:**

    - `network`: an `MLP` or `CNN` with `data.num_classes` outputs.
    - `data`: a `NetworkData`.
    - `setting`: a `TrainSetting` from `training_setting`.
    - `steps`: the number of steps; `record_every` must divide it. Metrics are recorded at
      steps 0, record_every, ..., steps.
    - `key`: draws dropout masks and minibatches.
    - `batch_size`: None (or n) for full-batch steps; otherwise each step trains on that many
      images drawn without replacement.
    - `precision`: matmul precision while compiling ("highest" keeps TF32 out on GPUs).

    **Returns:** a `NetworkRun`.
    """
    check_training(network, data, setting)
    dynamics = network_dynamics(data, steps, record_every, batch_size, precision)
    with jax.default_matmul_precision(dynamics.precision):
        (recorded, final), compile_s, run_s = timed_call(_run, network, data, setting, key,
                                                         dynamics)
    return NetworkRun(recorded_steps(dynamics), recorded, final, compile_s, run_s)
