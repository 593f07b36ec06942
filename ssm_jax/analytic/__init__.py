"""Closed forms and independent references the dynamics are held to (docs/theory.md).

- `modes`: mode strengths of the SSM and deep linear factors, the UFM's class outputs,
  learning times and their ratio.
- `separable`: the hard-margin SVM, the support-vector offsets of the flow, and direction
  errors, the limits that importance weights fade into.
"""

from ..metrics.separable import (  # the limit's metrics, beside the oracle they measure against
    direction_angle as direction_angle,
    direction_cosine as direction_cosine,
    direction_error as direction_error,
)
from .modes import (
    class_modes as class_modes,
    effective_init_output as effective_init_output,
    effective_init_strength as effective_init_strength,
    half_learning_time as half_learning_time,
    learning_time_ratio as learning_time_ratio,
    learning_times as learning_times,
    mode_strength as mode_strength,
    mode_strength_ode as mode_strength_ode,
    ufm_class_output as ufm_class_output,
    ufm_growth_rates as ufm_growth_rates,
    ufm_half_learning_time as ufm_half_learning_time,
)
from .separable import (
    MaxMargin as MaxMargin,
    check_binary_data as check_binary_data,
    max_margin as max_margin,
    measured_offsets as measured_offsets,
    support_offsets as support_offsets,
)
