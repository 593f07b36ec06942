"""The data: class imbalance (counts, class weights, label matrices and spectra), separable
Gaussian blobs and probe sets, and scikit-learn's digits."""

from .digits import (
    DEFAULT_PAIR as DEFAULT_PAIR,
    DigitsSplit as DigitsSplit,
    digit_pair as digit_pair,
    digits_images as digits_images,
    step_imbalanced_digits as step_imbalanced_digits,
)
from .imbalance import (
    LongTailImbalance as LongTailImbalance,
    StepImbalance as StepImbalance,
    class_label_matrix as class_label_matrix,
    class_weights as class_weights,
    label_matrix as label_matrix,
    label_spectrum as label_spectrum,
    labels_from_counts as labels_from_counts,
)
from .separable import (
    BinaryData as BinaryData,
    augment_bias as augment_bias,
    gaussian_blobs as gaussian_blobs,
    grid_axes as grid_axes,
    importance_weights as importance_weights,
    mean_direction as mean_direction,
    probe_grid as probe_grid,
)
