"""What every command shares: the console it prints to, the check of its output folder, and
the display of a table of result rows."""

from pathlib import Path

from rich.console import Console
from rich.table import Table
import typer

console = Console()


def prepare_out(out: Path) -> Path:
    """Makes the output folder. A path that exists and is not a folder is refused with a
    `typer.BadParameter` naming --out, before any work, so that nothing is overwritten.

    **Arguments:**

    - `out`: the folder given as --out; made with its parents if missing.

    **Returns:** `out`.
    """
    if out.exists() and not out.is_dir():
        raise typer.BadParameter(f"{out} exists and is not a folder.", param_hint="--out")
    out.mkdir(parents=True, exist_ok=True)
    return out


def show_rows(rows: list[dict], title: str) -> None:
    """Prints result rows as a table, one column per key, floats to three digits.

    **Arguments:**

    - `rows`: dicts with the same keys, in the columns' order.
    - `title`: the table's title.

    **Returns:** nothing.
    """
    table = Table(title=title)
    for name in rows[0]:
        table.add_column(name, justify="right")
    for row in rows:
        table.add_row(*(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values()))
    console.print(table)
