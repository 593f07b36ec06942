"""scikit-learn's digits (1,797 8x8 images, about 180 per digit), shipped with the package and
so available offline, as a `LabelledImages` set (one pool: the test split is drawn from it
too), with its 10-class step imbalance and its binary pair (`data.images` draws both)."""

import functools

import numpy as np

from .images import ImageSplit, LabelledImages, check_classes, class_pair, step_imbalanced_split

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


def digits_set() -> LabelledImages:
    """scikit-learn's digits as a `LabelledImages` (one pool, classes "0".."9")."""
    images, digits = _digits()
    return LabelledImages("digits", images, digits, tuple(str(d) for d in range(NUM_DIGITS)))


def step_imbalanced_digits(ratio: float = 10.0, minority_size: int = 9, *,
                           majority_digits=(0, 1, 2, 3, 4), test_per_class: int = 80,
                           seed: int = 0) -> ImageSplit:
    """The 10-class digits with a step imbalance on the training split and a balanced test
    split (`images.step_imbalanced_split` on `digits_set()`): each digit of
    `majority_digits` keeps `round(ratio * minority_size)` training images, every other
    digit `minority_size`.

    **Arguments:**

    - `ratio`: the imbalance ratio R >= 1.
    - `minority_size`: training images per minority digit.
    - `majority_digits`: the majority digits (1 to 9 distinct digits in 0..9).
    - `test_per_class`: test images per digit (at most 87 leaves every digit 87 for training).
    - `seed`: the split's seed.

    **Returns:** an `ImageSplit` with label c = digit c, `counts` as asked.
    """
    majority_digits = check_classes("majority_digits", majority_digits, NUM_DIGITS)
    if len(majority_digits) == NUM_DIGITS:
        raise ValueError(f"`majority_digits` = {majority_digits} is not allowed: expected 1 "
                         "to 9 digits, so that both groups are present.")
    return step_imbalanced_split(digits_set(), ratio, minority_size,
                                 majority_classes=majority_digits,
                                 test_per_class=test_per_class, seed=seed)


def digit_pair(digits=DEFAULT_PAIR, *, train_per_class: int = 90, test_per_class: int = 80,
               seed: int = 0) -> ImageSplit:
    """A binary problem (`images.class_pair` on `digits_set()`): label 0 is `digits[0]`,
    label 1 is `digits[1]` (the class importance weights act on), balanced in both splits,
    with every image of the eight other digits as out-of-distribution probes.

    **Arguments:**

    - `digits`: two distinct digits; see `DEFAULT_PAIR` for why 3 and 8.
    - `train_per_class`, `test_per_class`: images per digit in each split.
    - `seed`: the split's seed.

    **Returns:** an `ImageSplit` with `x_probe` and `probe_class` set.
    """
    digits = check_classes("digits", digits, NUM_DIGITS, length=2)
    return class_pair(digits_set(), digits, train_per_class=train_per_class,
                      test_per_class=test_per_class, seed=seed)
