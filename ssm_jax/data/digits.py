"""scikit-learn's digits (1,797 8x8 images, about 180 per digit), shipped with the package and
so available offline: a 10-class step imbalance for re-weighting and a binary pair for
importance weighting.

Each split is drawn per digit with an explicit seed: the test split takes the same number of
images of every digit (balanced), the training split is drawn from the rest, so no image is
in both. Inputs are standardized with the training split's statistics only: each pixel
centred on its training mean, all pixels divided by one global standard deviation (a
per-pixel scale would blow up the border pixels that are almost always 0).
"""

import dataclasses
import functools

import numpy as np

from .. import _validate
from .imbalance import StepImbalance

NUM_DIGITS = 10

DEFAULT_PAIR = (3, 8)
"""The importance-weighting pair. 3 and 8 share most of their strokes (an 8 is a 3 closed on
the left) and are among the pairs linear classifiers confuse most on these images, so where
the boundary sits matters; the pair is still separable, so a network trains to interpolation,
the regime in which importance weights are expected to fade."""


@functools.cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.astype(np.float64), bunch.target.astype(np.int64)


def digits_images() -> tuple[np.ndarray, np.ndarray]:
    """All of scikit-learn's digits: images (1797, 8, 8) with pixels in 0..16, digits (1797,)."""
    images, digits = _digits()
    return images.copy(), digits.copy()


@dataclasses.dataclass(frozen=True)
class DigitsSplit:
    """A train/test split of the digits, standardized, with labels 0..k-1.

    - `x_train`, `x_test`: images (n, 8, 8), standardized with the training statistics.
    - `y_train`, `y_test`: labels in 0..k-1; label c is the digit `digits[c]`.
    - `digits`: the digit of each label.
    - `train_index`, `test_index`: rows of `digits_images()` in each split.
    - `x_probe`, `probe_digit`: images of digits outside `digits` (standardized the same way)
      and their digits: out-of-distribution probes, present for a binary pair only.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    digits: tuple[int, ...]
    train_index: np.ndarray
    test_index: np.ndarray
    x_probe: np.ndarray | None = None
    probe_digit: np.ndarray | None = None

    @property
    def num_classes(self) -> int:
        """k, the number of labels."""
        return len(self.digits)

    @property
    def counts(self) -> np.ndarray:
        """Training images per label."""
        return np.bincount(self.y_train, minlength=self.num_classes)


def _check_digits(name: str, digits, *, length: int | None = None) -> tuple[int, ...]:
    values = tuple(digits)
    if not all(isinstance(d, (int, np.integer)) and 0 <= d < NUM_DIGITS for d in values):
        raise ValueError(f"`{name}` = {values} is not allowed: digits are integers 0..9.")
    if len(set(values)) != len(values):
        raise ValueError(f"`{name}` = {values} is not allowed: the digits must be distinct.")
    if length is not None and len(values) != length:
        raise ValueError(f"`{name}` = {values} is not allowed: expected {length} digits.")
    return tuple(int(d) for d in values)


def _standardize(x_train, *others):
    mean = x_train.mean(axis=0)
    scale = (x_train - mean).std()
    return tuple((x - mean) / scale for x in (x_train, *others))


def _draw(per_digit: dict[int, int], test_per_class: int, digits, seed: int):
    """Per digit: `test_per_class` test images, then `per_digit[d]` training images from the
    rest, all by one seeded permutation per digit."""
    _, all_digits = _digits()
    rng = np.random.default_rng(seed)
    train, test = [], []
    for d in range(NUM_DIGITS):  # every digit draws, so a digit's split does not depend on
        rows = rng.permutation(np.flatnonzero(all_digits == d))  # which others are used
        if d in digits:
            test.append(rows[:test_per_class])
            train.append(rows[test_per_class:test_per_class + per_digit[d]])
    return np.concatenate(train), np.concatenate(test)


def _available(test_per_class: int) -> int:
    _, all_digits = _digits()
    return int(np.bincount(all_digits).min()) - test_per_class


def step_imbalanced_digits(ratio: float = 10.0, minority_size: int = 9, *,
                           majority_digits=(0, 1, 2, 3, 4), test_per_class: int = 80,
                           seed: int = 0) -> DigitsSplit:
    """The 10-class digits with a step imbalance on the training split and a balanced test
    split: each digit of `majority_digits` keeps `round(ratio * minority_size)` training
    images, every other digit `minority_size`.

    **Arguments:**

    - `ratio`: the imbalance ratio R >= 1.
    - `minority_size`: training images per minority digit.
    - `majority_digits`: the majority digits (1 to 9 distinct digits in 0..9).
    - `test_per_class`: test images per digit (at most 87 leaves every digit 87 for training).
    - `seed`: the split's seed.

    **Returns:** a `DigitsSplit` with label c = digit c, `counts` as asked.
    """
    majority = _check_digits("majority_digits", majority_digits)
    if not 1 <= len(majority) <= NUM_DIGITS - 1:
        raise ValueError(f"`majority_digits` = {majority} is not allowed: expected 1 to 9 "
                         "digits, so that both groups are present.")
    test_per_class = _validate.integer("test_per_class", test_per_class, minimum=1)
    available = _available(test_per_class)
    if available < 1:
        raise ValueError(f"`test_per_class` = {test_per_class} is not allowed: the smallest "
                         f"digit has {available + test_per_class} images.")
    minority_size = _validate.integer("minority_size", minority_size, minimum=1)
    _validate.number("ratio", ratio, low=1.0)
    # Counts come from `StepImbalance` so that they match what the SSM is given.
    imbalance = StepImbalance(NUM_DIGITS, ratio, minority_size,
                              majority_fraction=len(majority) / NUM_DIGITS)
    majority_size, minority_size = int(imbalance.counts[0]), int(imbalance.counts[-1])
    if majority_size > available:
        raise ValueError(
            f"`ratio` = {ratio} is not allowed with `minority_size` = {minority_size}: a "
            f"majority digit would need {majority_size} training images, but only "
            f"{available} remain per digit after {test_per_class} test images; expected "
            f"ratio * minority_size <= {available}.")
    per_digit = {d: majority_size if d in majority else minority_size for d in range(10)}
    train, test = _draw(per_digit, test_per_class, tuple(range(NUM_DIGITS)), seed)
    images, all_digits = _digits()
    x_train, x_test = _standardize(images[train], images[test])
    return DigitsSplit(x_train, all_digits[train], x_test, all_digits[test],
                       tuple(range(NUM_DIGITS)), train, test)


def digit_pair(digits=DEFAULT_PAIR, *, train_per_class: int = 90, test_per_class: int = 80,
               seed: int = 0) -> DigitsSplit:
    """A binary problem: label 0 is `digits[0]`, label 1 is `digits[1]` (the class importance
    weights act on), balanced in both splits, with every image of the eight other digits as
    out-of-distribution probes.

    **Arguments:**

    - `digits`: two distinct digits; see `DEFAULT_PAIR` for why 3 and 8.
    - `train_per_class`, `test_per_class`: images per digit in each split.
    - `seed`: the split's seed.

    **Returns:** a `DigitsSplit` with `x_probe` and `probe_digit` set.
    """
    digits = _check_digits("digits", digits, length=2)
    test_per_class = _validate.integer("test_per_class", test_per_class, minimum=1)
    train_per_class = _validate.integer("train_per_class", train_per_class, minimum=1)
    available = _available(test_per_class)
    if train_per_class > available:
        raise ValueError(f"`train_per_class` = {train_per_class} is not allowed: at most "
                         f"{available} images per digit remain after {test_per_class} test "
                         "images.")
    train, test = _draw(dict.fromkeys(digits, train_per_class), test_per_class, digits, seed)
    images, all_digits = _digits()
    probe = np.flatnonzero(~np.isin(all_digits, digits))
    x_train, x_test, x_probe = _standardize(images[train], images[test], images[probe])
    to_label = lambda d: (d == digits[1]).astype(np.int64)  # noqa: E731
    return DigitsSplit(x_train, to_label(all_digits[train]), x_test, to_label(all_digits[test]),
                       digits, train, test, x_probe=x_probe, probe_digit=all_digits[probe])
