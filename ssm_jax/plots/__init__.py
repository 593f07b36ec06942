"""The figures F1-F8, drawn from result datasets, one file per family: `reweighting` (F1,
F2), `sweeps` (F3), `importance` (F4, F5), `digits` (F6), `solvers` (F7, and GD against the flow);
`schedules` (F8); `style` holds the shared colours, the settings line, `save` and the
figure-path check."""

from .digits import importance_figure as importance_figure, reweighting_figure as reweighting_figure
from .importance import (
    boundaries_figure as boundaries_figure,
    direction_error_figure as direction_error_figure,
)
from .reweighting import (
    class_dynamics_figure as class_dynamics_figure,
    mode_strengths_figure as mode_strengths_figure,
)
from .schedules import schedules_figure as schedules_figure
from .solvers import (
    discretization_figure as discretization_figure,
    work_precision_figure as work_precision_figure,
)
from .style import (
    MAJORITY as MAJORITY,
    MINORITY as MINORITY,
    check_figure_path as check_figure_path,
    figure_formats as figure_formats,
    save as save,
)
from .sweeps import learning_time_ratio_figure as learning_time_ratio_figure
