"""What every figure shares: the group colours, the colours of importance weights, and how a
figure is written to disk."""

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


def save(fig, path, dpi: int = 110) -> None:
    """Saves a figure compactly and closes it.

    **Arguments:**

    - `fig`: a matplotlib figure.
    - `path`: the file to write; its suffix picks the format.
    - `dpi`: dots per inch.

    **Returns:** nothing; `fig` is closed.
    """
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
