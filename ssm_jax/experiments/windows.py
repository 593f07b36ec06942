"""When a method beats ERM: the first window of saves where its reading exceeds ERM's by
more than a threshold, and its best gain, for the early-stopping map (`schedules`)."""

import numpy as np
import xarray as xr

# Readings of a window: measured balanced accuracy, measured balanced fraction of classes
# learned (progress >= 1/2), the closed form's fraction learned.
SOURCES = ("accuracy", "learned", "closed_form")


def _window(ts, gain, threshold):
    """(start, end, best) of the first run of saves where gain > threshold."""
    above = np.nan_to_num(gain, nan=-np.inf) > threshold
    best = float(np.nanmax(gain)) if np.any(np.isfinite(gain)) else np.nan
    if not above.any():
        return np.nan, np.nan, best
    first = int(np.argmax(above))
    after = np.flatnonzero(~above[first:])
    end = ts[first + after[0]] if after.size else ts[-1]
    return float(ts[first]), float(end), best


def windows(ds: xr.Dataset, threshold: float) -> xr.Dataset:
    """Each method's window and best gain over ERM, per model, ratio and reading.

    **Arguments:**

    - `ds`: the balanced accuracy, learned fraction and closed form over (model, ratio,
      weighting, time).
    - `threshold`: the excess over ERM that counts as beating it.

    **Returns:** `window_start`, `window_end`, `best_gain` over (model, ratio,
    weighting, source); NaN where a method never beats ERM, or does not apply.
    """
    ts = ds.time.values
    reading = {"accuracy": ds.balanced_accuracy, "learned": ds.balanced_learned,
               "closed_form": ds.predicted_learned}
    out = np.full((3,) + ds.balanced_accuracy.shape[:3] + (len(SOURCES),), np.nan)
    for s, source in enumerate(SOURCES):
        values = reading[source]
        gain = (values - values.sel(weighting="ERM")).values
        for index in np.ndindex(gain.shape[:3]):
            out[(slice(None),) + index + (s,)] = _window(ts, gain[index], threshold)
    dims = ("model", "ratio", "weighting", "source")
    return xr.Dataset({name: (dims, out[i]) for i, name in
                       enumerate(("window_start", "window_end", "best_gain"))},
                      coords={"source": list(SOURCES)})
