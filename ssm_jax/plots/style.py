"""What every figure shares: the group colours, the colours of importance weights, the line
that names a figure's setting, and how a figure is written to disk."""

import json
from pathlib import Path
import textwrap

from matplotlib.backend_bases import FigureCanvasBase
import matplotlib.pyplot as plt
import numpy as np

MAJORITY, MINORITY = "tab:blue", "tab:red"
"""The colours of the majority and minority groups, in every figure that shows both."""


def weight_colors(count: int) -> np.ndarray:
    """One colour per importance weight, from blue (the smallest) to red (the largest).

    **Arguments:**

    - `count`: how many weights, in increasing order.

    **Returns:** RGBA colours, shape (count, 4).
    """
    return plt.cm.coolwarm(np.linspace(0.0, 1.0, count))


def figure_formats() -> list[str]:
    """The file suffixes matplotlib can write a figure to, without the dot ("png", "pdf",
    "svg", ...)."""
    return sorted(FigureCanvasBase.get_supported_filetypes())


def check_figure_path(name: str, path) -> Path:
    """Checks, before anything is drawn, that a figure can be written to `path`: its suffix
    is a format matplotlib writes and it is not a folder.

    **Arguments:**

    - `name`: the parameter that gave the path (e.g. "--out" or "path"), for the message.
    - `path`: the figure's file.

    **Returns:** `path` as a `Path`; a `ValueError` naming `name`, the path and the allowed
    suffixes if it cannot be written.
    """
    path = Path(path)
    formats = figure_formats()
    if path.suffix.lower().removeprefix(".") not in formats:
        raise ValueError(f"`{name}` = '{path}' is not allowed: a figure's file must end in one "
                         f"of {', '.join('.' + f for f in formats)}.")
    if path.is_dir():
        raise ValueError(f"`{name}` = '{path}' is not allowed: it is a folder; expected a "
                         "figure's file.")
    return path


def setting(ds, name: str, default=None):
    """One setting of the run that made `ds`: the attribute `name`, or the entry `name` of
    the JSON configuration that `results.write_netcdf` stores in `attrs["config"]`.

    **Arguments:**

    - `ds`: a result dataset.
    - `name`: the setting, as the experiment's configuration names it.
    - `default`: returned where `ds` does not record it.

    **Returns:** the setting's value, or `default`.
    """
    if name in ds.attrs:
        return ds.attrs[name]
    try:
        config = json.loads(ds.attrs.get("config", "{}"))
    except (TypeError, ValueError):  # not JSON: no setting to read
        return default
    return config.get(name, default) if isinstance(config, dict) else default


def imbalance_text(counts) -> str:
    """The class counts in the field's words: "k = 10, R = 10, n_min = 10 (n = 550)"."""
    counts = np.asarray(counts)
    return (f"k = {counts.size}, R = {counts.max() / counts.min():g}, "
            f"n_min = {int(counts.min())} (n = {int(counts.sum())})")


TITLE_SIZE = 9
"""The font size of a figure's setting line (points)."""


def wrap_title(parts, width_inches: float, fontsize: float = TITLE_SIZE) -> str:
    """The parts joined by "; " in lines that fit `width_inches`, broken between parts where
    a part fits a line (within a part only where it does not), so that no title is clipped.

    **Arguments:**

    - `parts`: phrases, empty ones left out.
    - `width_inches`: the width the title may take.
    - `fontsize`: its size in points.

    **Returns:** the title, lines joined by newlines.
    """
    # An average DejaVu Sans character is about 0.6 em wide; 0.95: a margin for wide ones.
    chars = max(20, int(0.95 * width_inches * 72 / (0.6 * fontsize)))
    lines = [""]
    for part in (p for p in parts if p):
        joined = f"{lines[-1]}; {part}" if lines[-1] else part
        if len(joined) <= chars:
            lines[-1] = joined
            continue
        if lines[-1]:
            lines[-1] += ";"
        lines.extend(textwrap.wrap(part, chars) or [""])
    return "\n".join(line for line in lines if line)


def name_setting(fig, *parts: str) -> None:
    """Writes a figure's setting as its title, the parts joined by "; " (empty parts left
    out), wrapped to the figure's width (`wrap_title`).

    **Arguments:**

    - `fig`: a matplotlib figure.
    - `parts`: phrases that name the setting, e.g. `imbalance_text(counts)`.

    **Returns:** nothing.
    """
    fig.suptitle(wrap_title(parts, fig.get_figwidth()), fontsize=TITLE_SIZE)


def save(fig, path, dpi: int = 110) -> None:
    """Saves a figure compactly and closes it. The path is checked first
    (`check_figure_path`), so that a suffix matplotlib cannot write fails before the
    figure is rendered.

    **Arguments:**

    - `fig`: a matplotlib figure.
    - `path`: the file to write; its suffix picks the format.
    - `dpi`: dots per inch.

    **Returns:** nothing; `fig` is closed (also when the path is refused).
    """
    try:
        fig.savefig(check_figure_path("path", path), dpi=dpi)
    finally:
        plt.close(fig)
