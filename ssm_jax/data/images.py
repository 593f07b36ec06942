"""Labelled image sets and the experiments' splits of them: a step imbalance over all classes
(re-weighting) and a balanced binary pair with out-of-pair probes (importance weighting).

An image set is a pool of training images and, where its files keep one apart (MNIST's t10k
files, CIFAR-10's test batch), a pool of test images. Each split is drawn per class with an
explicit seed: the test split takes the same number of images of every class (balanced) from
the test pool, the training split its counts from the training pool; with a single pool the
training images come from what the test split left, so no image is in both. Inputs are
standardized with the training split's statistics only: each pixel centred on its training
mean, all pixels divided by one global standard deviation (a per-pixel scale would blow up
border pixels that are almost always 0).
"""

import dataclasses

import numpy as np

from .. import _validate
from .imbalance import StepImbalance


@dataclasses.dataclass(frozen=True)
class LabelledImages:
    """A labelled image set, pixels as stored (e.g. uint8).

    **Arguments:**

    - `name`: what the set is, for titles and provenance.
    - `images`: the training pool, (N, h, w) or (N, channels, h, w).
    - `labels`: its classes, (N,) in 0..k-1.
    - `class_names`: the name of each class (k of them).
    - `test_images`, `test_labels`: a separate test pool, or None to draw both splits from
      the training pool.
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    test_images: np.ndarray | None = None
    test_labels: np.ndarray | None = None

    def __post_init__(self):
        k = len(self.class_names)
        pools = [("images", "labels")]
        if (self.test_images is None) != (self.test_labels is None):
            raise ValueError("`test_images` and `test_labels` are given together or not at all.")
        if self.test_images is not None:
            pools.append(("test_images", "test_labels"))
        for x, y in pools:
            images, labels = getattr(self, x), getattr(self, y)
            if np.ndim(images) not in (3, 4) or np.shape(labels) != np.shape(images)[:1]:
                raise ValueError(f"`{x}` has shape {np.shape(images)} and `{y}` shape "
                                 f"{np.shape(labels)}: expected images (N, h, w) or "
                                 "(N, channels, h, w) and one label per image.")
            _validate.labels(y, labels, k)
            if np.shape(images)[1:] != np.shape(self.images)[1:]:
                raise ValueError(f"`{x}` holds images of shape {np.shape(images)[1:]}, but "
                                 f"`images` holds {np.shape(self.images)[1:]}: expected one "
                                 "shape.")

    @property
    def num_classes(self) -> int:
        """k, the number of classes."""
        return len(self.class_names)

    @property
    def test_pool(self) -> tuple[np.ndarray, np.ndarray]:
        """The images and labels test splits are drawn from."""
        if self.test_images is None:
            return self.images, self.labels
        return self.test_images, self.test_labels

    def available(self, classes, test_per_class: int) -> int:
        """Training images left per class of `classes` (the fewest) once `test_per_class`
        test images are set aside; raises ValueError where the test pool is too small."""
        classes = list(classes)
        test_counts = np.bincount(self.test_pool[1], minlength=self.num_classes)[classes]
        if test_counts.min() < test_per_class:
            raise ValueError(f"`test_per_class` = {test_per_class} is not allowed: the "
                             f"{self.name} test pool has only {test_counts.min()} images of "
                             "some class.")
        counts = np.bincount(self.labels, minlength=self.num_classes)[classes]
        return int(counts.min()) - (test_per_class if self.test_images is None else 0)


@dataclasses.dataclass(frozen=True)
class ImageSplit:
    """A train/test split of an image set, standardized, with labels 0..k-1.

    - `x_train`, `x_test`: images, standardized with the training statistics.
    - `y_train`, `y_test`: labels in 0..k-1; label c is the class `classes[c]` of the set.
    - `classes`: the set's class of each label.
    - `train_index`, `test_index`: rows of the set's training pool and test pool.
    - `x_probe`, `probe_class`: images of classes outside `classes` (standardized the same
      way) and their class: out-of-distribution probes, present for a binary pair only.
    - `name`: the image set's name.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[int, ...]
    train_index: np.ndarray
    test_index: np.ndarray
    x_probe: np.ndarray | None = None
    probe_class: np.ndarray | None = None
    name: str = ""

    @property
    def num_classes(self) -> int:
        """k, the number of labels."""
        return len(self.classes)

    @property
    def counts(self) -> np.ndarray:
        """Training images per label."""
        return np.bincount(self.y_train, minlength=self.num_classes)


def check_classes(name: str, classes, num_classes: int, *,
                  length: int | None = None) -> tuple[int, ...]:
    """`classes` as distinct integers in 0..num_classes-1 (`length` of them where given)."""
    values = tuple(classes)
    if not all(isinstance(c, (int, np.integer)) and 0 <= c < num_classes for c in values):
        raise ValueError(f"`{name}` = {values} is not allowed: classes are integers "
                         f"0..{num_classes - 1}.")
    if len(set(values)) != len(values):
        raise ValueError(f"`{name}` = {values} is not allowed: the classes must be distinct.")
    if length is not None and len(values) != length:
        raise ValueError(f"`{name}` = {values} is not allowed: expected {length} classes.")
    return tuple(int(c) for c in values)


def _standardize(x_train, *others):
    x_train = x_train.astype(np.float64)
    mean = x_train.mean(axis=0)
    scale = (x_train - mean).std()
    return tuple((x.astype(np.float64) - mean) / scale for x in (x_train, *others))


def _draw(source: LabelledImages, per_class: dict[int, int], test_per_class: int, seed: int):
    """Per class: `test_per_class` test images, then `per_class[c]` training images, all by
    seeded permutations drawn for every class in order, so that a class's split does not
    depend on which others are used."""
    rng = np.random.default_rng(seed)
    test_labels = source.test_pool[1]
    train, test = [], []
    for c in range(source.num_classes):
        rows = rng.permutation(np.flatnonzero(source.labels == c))
        if source.test_images is None:
            test_rows, rows = rows[:test_per_class], rows[test_per_class:]
        else:
            test_rows = rng.permutation(np.flatnonzero(test_labels == c))[:test_per_class]
        if c in per_class:
            test.append(test_rows)
            train.append(rows[:per_class[c]])
    return np.concatenate(train), np.concatenate(test)


def step_imbalanced_split(source: LabelledImages, ratio: float, minority_size: int, *,
                          majority_classes, test_per_class: int, seed: int = 0) -> ImageSplit:
    """Every class of `source`, with a step imbalance on the training split and a balanced
    test split: each class of `majority_classes` keeps `round(ratio * minority_size)`
    training images, every other class `minority_size`.

    **Arguments:**

    - `source`: a `LabelledImages`.
    - `ratio`: the imbalance ratio R >= 1.
    - `minority_size`: training images per minority class.
    - `majority_classes`: the majority classes (at least one class left for the minority).
    - `test_per_class`: test images per class.
    - `seed`: the split's seed.

    **Returns:** an `ImageSplit` with label c = class c.
    """
    k = source.num_classes
    majority = check_classes("majority_classes", majority_classes, k)
    if not 1 <= len(majority) <= k - 1:
        raise ValueError(f"`majority_classes` = {majority} is not allowed: expected 1 to "
                         f"{k - 1} classes, so that both groups are present.")
    test_per_class = _validate.integer("test_per_class", test_per_class, minimum=1)
    available = source.available(range(k), test_per_class)
    minority_size = _validate.integer("minority_size", minority_size, minimum=1)
    _validate.number("ratio", ratio, low=1.0)
    # Counts come from `StepImbalance` so that they match what the SSM is given.
    imbalance = StepImbalance(k, ratio, minority_size, majority_fraction=len(majority) / k)
    majority_size, minority_size = int(imbalance.counts[0]), int(imbalance.counts[-1])
    if majority_size > available:
        raise ValueError(
            f"`ratio` = {ratio} is not allowed with `minority_size` = {minority_size}: a "
            f"majority class would need {majority_size} training images, but only "
            f"{available} remain per class of {source.name} after {test_per_class} test "
            f"images; expected ratio * minority_size <= {available}.")
    per_class = {c: majority_size if c in majority else minority_size for c in range(k)}
    train, test = _draw(source, per_class, test_per_class, seed)
    test_images, test_labels = source.test_pool
    x_train, x_test = _standardize(source.images[train], test_images[test])
    return ImageSplit(x_train, source.labels[train], x_test, test_labels[test],
                      tuple(range(k)), train, test, name=source.name)


def class_pair(source: LabelledImages, classes, *, train_per_class: int, test_per_class: int,
               probes_per_class: int | None = None, seed: int = 0) -> ImageSplit:
    """A binary problem: label 0 is `classes[0]`, label 1 is `classes[1]` (the class
    importance weights act on), balanced in both splits, with images of every other class as
    out-of-distribution probes, drawn from the test pool (every image there, or
    `probes_per_class` of each class drawn with the seed).

    **Arguments:**

    - `source`: a `LabelledImages`.
    - `classes`: two distinct classes.
    - `train_per_class`, `test_per_class`: images per class in each split.
    - `probes_per_class`: probe images per other class; None takes them all.
    - `seed`: the split's seed.

    **Returns:** an `ImageSplit` with `x_probe` and `probe_class` set.
    """
    classes = check_classes("classes", classes, source.num_classes, length=2)
    test_per_class = _validate.integer("test_per_class", test_per_class, minimum=1)
    train_per_class = _validate.integer("train_per_class", train_per_class, minimum=1)
    available = source.available(classes, test_per_class)
    if train_per_class > available:
        raise ValueError(f"`train_per_class` = {train_per_class} is not allowed: at most "
                         f"{available} images per class of {source.name} remain after "
                         f"{test_per_class} test images.")
    train, test = _draw(source, dict.fromkeys(classes, train_per_class), test_per_class, seed)
    test_images, test_labels = source.test_pool
    probe = np.flatnonzero(~np.isin(test_labels, classes))
    if probes_per_class is not None:
        probes_per_class = _validate.integer("probes_per_class", probes_per_class, minimum=1)
        rng = np.random.default_rng([seed, 1])  # apart from the splits' stream
        probe = np.concatenate([rng.permutation(probe[test_labels[probe] == c])[
            :probes_per_class] for c in np.unique(test_labels[probe])])
    x_train, x_test, x_probe = _standardize(source.images[train], test_images[test],
                                            test_images[probe])
    to_label = lambda c: (c == classes[1]).astype(np.int64)  # noqa: E731
    return ImageSplit(x_train, to_label(source.labels[train]), x_test,
                      to_label(test_labels[test]), classes, train, test, x_probe=x_probe,
                      probe_class=test_labels[probe], name=source.name)
