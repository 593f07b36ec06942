"""What every command shares: the consoles it prints to, help that shows flags as flags, the
check of its output folder, error lines that rich markup cannot garble, tables that fold
instead of cutting, and the list of files written."""

from pathlib import Path

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
import typer
from typer.core import TyperCommand, TyperGroup

from .. import _validate

console = Console()
error_console = Console(stderr=True)


class _Flags:
    """Help that shows a flag (--quick, --help) without a type: typer writes `<bool>` beside
    it, as if it took a value."""

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for param in params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""
        return params


class Command(_Flags, TyperCommand):
    """A command whose help shows its flags as flags (`app.command(cls=Command)`)."""


class Group(_Flags, TyperGroup):
    """A group of commands whose help shows its flags as flags (`typer.Typer(cls=Group)`)."""


def print_error(headline: str, detail: object = "") -> None:
    """Prints an error line to stderr: `headline` in red, then `detail`, both as plain text,
    so that square brackets in a message or a path ("[x]", "[red]") are printed, not read as
    markup.

    **Arguments:**

    - `headline`: what failed, e.g. "Cannot run configs/x.toml:".
    - `detail`: why, e.g. the exception; printed after a space.

    **Returns:** nothing.
    """
    line = Text(headline, style="red")
    if str(detail):
        line.append(" " + str(detail))
    error_console.print(line, soft_wrap=True)  # a long path stays whole on its line


def prepare_out(out: str | Path, files=()) -> Path:
    """Checks the output folder before any work (`_validate.output_folder`) and makes it, so
    that a bad --out costs nothing and overwrites nothing.

    **Arguments:**

    - `out`: the folder given as --out, made with its parents if missing; best the string as
      given (a `Path` reads "" as the current folder, so an empty --out would pass).
    - `files`: the names of the files the command will write into it.

    **Returns:** `out` (with "~" expanded); a `typer.BadParameter` naming --out, the path and
    what is allowed if it cannot hold the results.
    """
    try:
        folder = _validate.output_folder("--out", out, files)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--out") from None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # e.g. a parent the system does not let anyone write into
        raise typer.BadParameter(f"`--out` = '{folder}' is not allowed: it cannot be made "
                                 f"({error.strerror}); expected a folder that exists and is "
                                 "writable, or one that can be made.",
                                 param_hint="--out") from None
    return folder


def table(title: str, names, *, left=(), caption: str | None = None) -> Table:
    """An empty table with one column per name, laid out compactly (one space between
    columns) and folding a cell that does not fit instead of cutting it, so that the
    package's tables keep whole headers at 80 columns.

    **Arguments:**

    - `title`: the table's title.
    - `names`: the column headers, in order.
    - `left`: the headers of columns of words, justified left (numbers go right).
    - `caption`: a line under the table.

    **Returns:** a `rich.table.Table` to fill with `add_row`.
    """
    result = Table(title=title, caption=caption, box=box.SIMPLE_HEAD, padding=(0, 0),
                   show_edge=False)
    for name in names:
        result.add_column(name, justify="left" if name in left else "right", overflow="fold")
    return result


def show_rows(rows: list[dict], title: str) -> None:
    """Prints result rows as a table, one column per key, floats to three digits ("-" for
    NaN: a value that did not happen).

    **Arguments:**

    - `rows`: dicts with the same keys, in the columns' order.
    - `title`: the table's title.

    **Returns:** nothing.
    """
    words = [name for name, value in rows[0].items() if isinstance(value, str)]
    shown = table(title, list(rows[0]), left=words)
    for row in rows:
        shown.add_row(*(("-" if v != v else f"{v:.3g}") if isinstance(v, float) else str(v)
                        for v in row.values()))
    console.print(shown)


def report_written(out: Path, written: dict[str, str]) -> None:
    """Prints one line per file written: its path and what it holds, never wrapped (the
    terminal folds it), so that a path can be copied whole.

    **Arguments:**

    - `out`: the output folder.
    - `written`: file name -> what it holds.

    **Returns:** nothing.
    """
    for name, what in written.items():
        console.print(f"wrote {escape(str(out / name))}: {what}", soft_wrap=True)
