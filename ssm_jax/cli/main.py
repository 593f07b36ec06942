"""The `ssm-jax` command: the app, `--version` and `version`, and the registration of the
commands defined in the other files of this package (`demo`; `sweep`, `merge` and `plot`;
`run NAME`; `bench solvers|gd`). Every command imports its heavy modules when it runs, so that
--help stays fast."""

from typing import Annotated

import typer

from . import bench, demo, experiments, sweeps
from ._common import console

# Markdown help: a docstring's paragraphs are re-wrapped to the terminal (the rich mode keeps
# their line breaks) and square brackets are text, not markup.
app = typer.Typer(
    help="Exact training dynamics under class imbalance and loss re-weighting.",
    no_args_is_help=True, add_completion=False, rich_markup_mode="markdown",
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


app.command("demo")(demo.demo)
app.command("sweep")(sweeps.sweep)
app.command("merge")(sweeps.merge)
app.command("plot")(sweeps.plot)


@app.command()
def version():
    """Print the versions of ssm_jax and its core libraries."""
    from ..results import provenance

    for name, value in provenance().items():
        console.print(f"{name}: {value}")


run_app = typer.Typer(help="Run a named experiment.", no_args_is_help=True)
run_app.command("importance")(experiments.importance)
run_app.command("digits")(experiments.digits)
run_app.command("schedules")(experiments.schedules)
app.add_typer(run_app, name="run")

bench_app = typer.Typer(help="Benchmark solvers on problems with known solutions.",
                        no_args_is_help=True)
bench_app.command("solvers")(bench.solvers)
bench_app.command("gd")(bench.gd)
app.add_typer(bench_app, name="bench")
