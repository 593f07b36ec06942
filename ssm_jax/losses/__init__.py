"""Per-example losses and their weighted means.

Losses are small Equinox modules, so that their parameters (the polynomial tail's alpha, the
adjusted losses' margins and scales) are array leaves a sweep can vary without recompiling.
Each maps outputs and labels to one loss per example; the `Objective` takes the weighted mean.

- Class losses (`AbstractClassLoss`) act on logits (n, k) and integer labels in 0..k-1.
- Binary losses (`AbstractBinaryLoss`) act on one output per example, (n,) or (n, 1), and
  labels in {-1, +1}; margin losses (`AbstractMarginLoss`) through the margin m_i = y_i f(x_i).

Each kind owns its label convention (which labels are allowed, the class index metrics use,
the label of padding, what counts as correct) and says whether it is the square loss of the
logits (`square_targets`), so that objectives, metrics, padding and the dynamics' exact
reductions ask the loss instead of telling the kinds apart.

Each loss also defines `progress`: how far an example's correct-class output has gone from
its value at zero outputs to its fitted value (0 at the start, 1 when fit). A class's learning
time is the first time its mean progress reaches 1/2.

The files: `_base` (the interface and the label conventions), `standard` (square,
cross-entropy, logistic, exponential, polynomially tailed), `adjusted` (the margin-adjusting
losses: logit adjustment, VS, LDAM).
"""

from ._base import (
    AbstractBinaryLoss as AbstractBinaryLoss,
    AbstractClassLoss as AbstractClassLoss,
    AbstractLoss as AbstractLoss,
    AbstractMarginLoss as AbstractMarginLoss,
    correct_class_outputs as correct_class_outputs,
    l2_penalty as l2_penalty,
    margins as margins,
    per_class as per_class,
    weighted_mean as weighted_mean,
)
from .adjusted import (
    LDAM as LDAM,
    AbstractAdjustedCrossEntropy as AbstractAdjustedCrossEntropy,
    LogitAdjusted as LogitAdjusted,
    VSLoss as VSLoss,
    VSMargin as VSMargin,
)
from .standard import (
    CrossEntropy as CrossEntropy,
    Exponential as Exponential,
    Logistic as Logistic,
    PolynomialTail as PolynomialTail,
    Square as Square,
    SquareMargin as SquareMargin,
    cross_entropy as cross_entropy,
    exponential as exponential,
    logistic as logistic,
    square as square,
    square_centered as square_centered,
    square_margin as square_margin,
)
