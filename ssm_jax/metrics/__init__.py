"""What a run records: per-class means, learning times and mode strengths (`per_class`), and
direction and margin metrics on separable data (`separable`)."""

from ..losses import correct_class_outputs as correct_class_outputs
from .per_class import (
    class_means as class_means,
    learning_time as learning_time,
    mode_strengths as mode_strengths,
)
from .separable import (
    SeparableMetrics as SeparableMetrics,
    direction_angle as direction_angle,
    direction_cosine as direction_cosine,
    direction_error as direction_error,
)
