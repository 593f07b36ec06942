"""Benchmarks of ODE solvers on training dynamics: work-precision against known solutions,
and discrete GD against the flow."""

from .discretization import convergence_order as convergence_order, gd_vs_flow as gd_vs_flow
from .problems import (
    PROBLEMS as PROBLEMS,
    BenchProblem as BenchProblem,
    bench_problem as bench_problem,
)
from .solvers import (
    SOLVERS as SOLVERS,
    benchmark_size as benchmark_size,
    cost_to_reach as cost_to_reach,
    run_benchmark as run_benchmark,
    work_precision as work_precision,
)
