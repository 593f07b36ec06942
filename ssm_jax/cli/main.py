"""The `ssm-jax` command: the app, `--version` and `version`, and the registration of the
commands defined in the other files of this package (`demo`; `sweep`, `merge` and `plot`;
`run NAME`; `bench solvers|gd`). Every command imports its heavy modules when it runs, so that
--help stays fast."""

from typing import Annotated

import typer

from . import bench, demo, experiments, sweeps
from ._common import Command, Group, console

MODEL_NAMES = ("ufm", "ssm", "ssm_class", "deep_ufm")
"""The model names a configuration's `problem.model` takes (`sweeps.registry.MODELS`, which
--help does not import: a test keeps the two equal)."""
LOSS_NAMES = ("square", "square_centered", "cross_entropy")
"""The loss names of `problem.loss` (`sweeps.registry.LOSSES`)."""

# Markdown help: a docstring's paragraphs are re-wrapped to the terminal (the rich mode keeps
# their line breaks) and square brackets are text, not markup.
app = typer.Typer(
    help="Exact training dynamics under class imbalance and loss re-weighting.",
    no_args_is_help=True, add_completion=False, rich_markup_mode="markdown", cls=Group,
)


def _print_version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"ssm-jax {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    show_version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the version of ssm_jax and exit.")] = False,
):
    pass


app.command("demo", cls=Command)(demo.demo)
app.command("sweep", cls=Command, epilog=(
    f"Models (`problem.model`): {', '.join(MODEL_NAMES)}. Losses (`problem.loss`): "
    f"{', '.join(LOSS_NAMES)}."))(sweeps.sweep)
app.command("merge", cls=Command)(sweeps.merge)
app.command("plot", cls=Command)(sweeps.plot)


@app.command(cls=Command)
def version():
    """Print the versions of ssm_jax and its core libraries."""
    from ..results import provenance

    for name, value in provenance().items():
        console.print(f"{name}: {value}")


EXPERIMENTS = ("importance", "digits", "mnist", "schedules")
"""The experiments of `ssm-jax run NAME`."""

run_app = typer.Typer(help=f"Run a named experiment: {', '.join(EXPERIMENTS)}.",
                      no_args_is_help=True, cls=Group)
for _name in EXPERIMENTS:
    run_app.command(_name, cls=Command)(getattr(experiments, _name))
app.add_typer(run_app, name="run")

bench_app = typer.Typer(help="Benchmark solvers on problems with known solutions: solvers, gd.",
                        no_args_is_help=True, cls=Group)
bench_app.command("solvers", cls=Command)(bench.solvers)
bench_app.command("gd", cls=Command)(bench.gd)
app.add_typer(bench_app, name="bench")
