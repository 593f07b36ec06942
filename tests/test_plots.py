"""The figures, drawn from small synthetic datasets shaped as the experiments record them:
axes, legends, the settings they name, failed runs they show, and the check of a figure's
file before anything is drawn."""

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr

from ssm_jax.experiments.demo import SAVE_DECADES, DemoConfig
from ssm_jax.plots import digits, importance, reweighting, solvers, style, sweeps

COUNTS = np.array([20, 20, 2, 2])


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _title(fig) -> str:
    """The figure's setting line, its wrapped lines joined again."""
    return fig.get_suptitle().replace("\n", " ")


def _within_figure(fig, *texts) -> bool:
    """Whether each text (the title by default) lies inside the drawn figure: not clipped."""
    fig.canvas.draw()
    box = fig.bbox
    for text in texts or (fig._suptitle,):
        extent = text.get_window_extent()
        if extent.x0 < box.x0 - 1 or extent.x1 > box.x1 + 1 or extent.y1 > box.y1 + 1:
            return False
    return True


def _demo_dataset(attrs=None) -> xr.Dataset:
    """Shaped as `run_demo`'s: SSM runs with mode strengths and their closed form, UFM runs
    whose square loss falls to float32 noise."""
    t = np.linspace(0.0, 400.0, 41)
    runs = [("SSM", "square", 0.0), ("SSM", "square", 1.0), ("UFM", "square", 0.0),
            ("UFM", "square", 1.0), ("UFM", "cross_entropy", 0.0),
            ("UFM", "cross_entropy", 1.0)]
    rate = np.array([1.0, 1.0, 0.3, 0.3]) / 20.0
    a = 1.0 / (1.0 + 1e5 * np.exp(-rate * t[:, None]))  # sigmoids from a0 ~ 1e-5
    loss = np.maximum(0.5 * np.exp(-rate * t[:, None]), 1e-15)
    n = len(runs)
    flat = xr.Dataset(
        {"mode_strength": (("run", "time", "mode"), np.broadcast_to(a, (n, *a.shape))),
         "analytic_mode_strength": (("run", "time", "mode"), np.broadcast_to(a, (n, *a.shape))),
         "class_accuracy": (("run", "time", "cls"), np.broadcast_to(a, (n, *a.shape))),
         "class_loss": (("run", "time", "cls"), np.broadcast_to(loss, (n, *loss.shape))),
         "status": ("run", np.zeros(n))},
        coords={"time": t, "cls": np.arange(4), "count": ("cls", COUNTS),
                "majority": ("cls", COUNTS == COUNTS.max()),
                "model": ("run", [r[0] for r in runs]), "loss": ("run", [r[1] for r in runs]),
                "power": ("run", [r[2] for r in runs])},
        attrs=attrs or {})
    # As `run_demo` lays it out: over (model, loss, power), NaN where a pair was not run.
    return flat.set_index(run=["model", "loss", "power"]).unstack("run")


def test_f1_has_log_time_and_names_its_setting():
    fig = reweighting.mode_strengths_figure(_demo_dataset({"init_scale": 1e-3}))
    for ax in fig.axes:
        assert ax.get_xscale() == "log"
        assert all(np.all(line.get_xdata() > 0) for line in ax.get_lines() if len(
            line.get_xdata()))
    title = _title(fig)
    for part in ("k = 4", "R = 10", "n_min = 2", "n = 44", "init scale 0.001", "a0 = "):
        assert part in title, title
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert labels == ["majority modes", "minority modes", "closed form"]
    linear = reweighting.mode_strengths_figure(_demo_dataset(), log_time=False)
    assert linear.axes[0].get_xscale() == "linear"


def test_f1_reads_the_setting_from_a_stored_config():
    """A dataset read back from netCDF holds its settings as JSON in attrs["config"]."""
    ds = _demo_dataset({"config": json.dumps({"init_scale": 0.002})})
    fig = reweighting.mode_strengths_figure(ds)
    assert "init scale 0.002" in _title(fig)


def test_demo_saves_are_log_spaced_as_f1_and_f2_draw_them():
    ts = DemoConfig(t1=500.0, num_saves=40).save_times
    assert ts[0] == 0.0 and ts[-1] == pytest.approx(500.0) and ts.size == 40
    np.testing.assert_allclose(np.diff(np.log10(ts[1:])), SAVE_DECADES / (ts.size - 2))


def test_f1_log_ticks_do_not_overlap():
    ds = _demo_dataset().assign_coords(time=DemoConfig(t1=400.0, num_saves=41).save_times)
    for fig in (reweighting.mode_strengths_figure(ds), reweighting.class_dynamics_figure(ds)):
        fig.canvas.draw()
        for ax in fig.axes:
            labels = ax.get_xticklabels() + ax.get_xticklabels(minor=True)
            assert not _overlapping(labels), [t.get_text() for t in labels]
        assert _within_figure(fig)


def test_f3_legend_beside_the_data_and_title_whole():
    ratio, power, seed = [1.0, 10.0, 100.0], [0.0, 0.5, 1.0], [0, 1]
    time = np.array(ratio)[:, None, None, None] ** (0.5 - np.array(power))[:, None, None]
    ds = xr.Dataset(
        {"learning_time": (("ratio", "power", "seed", "cls"),
                           np.concatenate([np.ones((3, 3, 2, 1)), time * np.ones((1, 1, 2, 1))],
                                          axis=-1)),
         "predicted_ratio": (("ratio", "power", "seed"), time[..., 0] * np.ones((1, 1, 2)))},
        coords={"ratio": ratio, "power": power, "seed": seed, "cls": ["majority", "minority"]},
        attrs={"config": json.dumps({
            "metadata": {"problem": {"model": "ufm", "loss": "square", "num_classes": 10,
                                     "minority_size": 10, "majority_fraction": 0.5, "dim": 32}},
            "dynamics": {"kind": "flow", "t1": 20000.0, "solver": "Tsit5"}})})
    fig = sweeps.learning_time_ratio_figure(ds)
    assert _within_figure(fig, fig._suptitle, *[ax.title for ax in fig.axes])
    assert "mean over 2 seeds (band: min to max)" in _title(fig)
    legend = fig.legends[0].get_window_extent()
    assert not any(legend.overlaps(ax.get_window_extent()) for ax in fig.axes)
    assert "closed form" in [t.get_text() for t in fig.legends[0].get_texts()]


def test_f2_loss_stops_above_round_off_and_says_it_is_unweighted():
    fig = reweighting.class_dynamics_figure(_demo_dataset())
    loss_axes = [ax for ax in fig.axes if ax.get_yscale() == "log"]
    assert len(loss_axes) == 2  # square and cross-entropy
    for ax in loss_axes:
        # the synthetic loss starts at 0.5 and falls to 1e-15
        assert ax.get_ylim()[0] == pytest.approx(reweighting.LOSS_FLOOR * 0.5)
        assert "unweighted" in ax.get_ylabel()
    for ax in fig.axes:
        assert ax.get_xscale() == "log"
    labels = fig.axes[0].get_legend().get_texts()
    assert [t.get_text() for t in labels] == ["gamma = 0", "gamma = 1", "majority", "minority"]
    title = _title(fig)
    assert "UFM, loss re-weighting" in title and "R = 10" in title
    ssm = reweighting.class_dynamics_figure(_demo_dataset(), model="SSM")
    assert "re-weighted target" in ssm.axes[1].get_ylabel()


def _importance_dataset(alpha=None) -> xr.Dataset:
    """Shaped as `run_importance`'s, two weights, one lambda, one loss, a 5 x 5 grid."""
    weights, times, snaps = np.array([-2.0, 2.0]), np.array([0.0, 1.0, 10.0, 100.0]), [1.0]
    g = np.linspace(-2.0, 2.0, 5)
    grid = np.broadcast_to(g[None, :] + 0.1 * g[:, None], (1, 1, 2, 1, 1, 5, 5))
    angle = np.broadcast_to(1.0 / np.log(np.e + times), (1, 1, 2, 1, 1, 4))
    attrs = {} if alpha is None else {"alpha": alpha}
    return xr.Dataset(
        {"grid_outputs": (("model", "loss", "log2_weight", "l2", "snapshot", "gy", "gx"),
                          grid),
         "probe_positive": (("model", "loss", "log2_weight", "l2", "seed", "time"),
                            np.full((1, 1, 2, 1, 1, 4), 0.5)),
         "direction_angle": (("model", "loss", "log2_weight", "l2", "seed", "time"), angle),
         "inputs": (("example", "input"), [[1.0, 1.0], [-1.0, -1.0], [1.5, 0.5]]),
         "labels": (("example",), [1, -1, 1]),
         "svm_direction": (("feature",), [1.0, 1.0, 0.0])},
        coords={"model": ["linear"], "loss": ["polynomial"], "log2_weight": weights,
                "l2": [0.0], "seed": [0], "time": times, "snapshot": snaps, "gx": g, "gy": g,
                "feature": ["x1", "x2", "bias"]}, attrs=attrs)


def test_f4_has_ticks_and_the_svm_in_its_legend():
    fig = importance.boundaries_figure(_importance_dataset(alpha=2.0), loss="polynomial",
                                       models=("linear",))
    boundary = fig.axes[0]
    assert len(boundary.get_xticks()) > 1 and len(boundary.get_yticks()) > 1
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels[:2] == ["w = 2^-2", "w = 2^+2"]
    assert any(label.startswith("SVM boundary") for label in labels)
    title = _title(fig)
    for part in ("polynomial loss (alpha = 2)", "lambda = 0", "2 positive + 1 negative"):
        assert part in title, title
    assert _within_figure(fig)
    # Five snapshots and two models wrap into rows that fit a notebook (about 10 inches).
    wide = _importance_dataset().assign_coords(snapshot=[1.0]).reindex(
        snapshot=[0.1, 1.0, 10.0, 100.0, 1000.0], method="nearest")
    assert importance.boundaries_figure(wide, loss="polynomial").get_figwidth() <= 10.0


def test_f5_has_a_legend_for_the_weights():
    fig = importance.direction_error_figure(_importance_dataset(), loss="polynomial",
                                            models=("linear",))
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["w = 2^-2", "w = 2^+2"]
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [
        "lambda = 0", "1 / log t"]
    assert "polynomial loss" in _title(fig)
    assert _within_figure(fig)


def test_f6_draws_every_network_and_names_the_setting():
    powers, steps = [0.0, 1.0], np.arange(0, 50, 10)
    acc = np.broadcast_to(np.linspace(0.1, 0.9, 5)[:, None], (2, 2, 3, 5, 4))
    ds = xr.Dataset(
        {"test_accuracy": (("network", "power", "seed", "step", "cls"), acc),
         "learning_step_ratio": (("network", "power", "seed"), np.full((2, 2, 3), 2.0)),
         "predicted_ratio": (("power", "reading"), [[3.0, 4.0], [1.0, 0.5]])},
        coords={"network": ["mlp", "cnn"], "power": powers, "seed": np.arange(3),
                "step": steps, "cls": np.arange(4), "count": ("cls", COUNTS),
                "majority": ("cls", COUNTS == COUNTS.max()),
                "reading": ["target (SSM)", "loss (UFM)"]},
        attrs={"init_strength": 0.01})
    fig = digits.reweighting_figure(ds)
    titles = [ax.get_title() for ax in fig.axes]
    assert "MLP, gamma = 0 (ERM)" in titles and "CNN, gamma = 1" in titles
    ratio = fig.axes[-1].get_legend_handles_labels()[1]
    assert {"MLP (measured)", "CNN (measured)"} <= set(ratio)
    title = _title(fig)
    assert "R = 10" in title and "3 seeds" in title and "init strength 0.01" in title
    # The gap to the models, stated: measured 2 against target prediction 3 at gamma = 0.
    assert fig.axes[-1].get_title().endswith("MLP 0.7x, CNN 0.7x")
    only = digits.reweighting_figure(ds, networks=["cnn"])
    assert not any(t.startswith("MLP") for t in (ax.get_title() for ax in only.axes))


def test_f6_importance_names_its_network():
    dims = ("batch_norm", "l2", "dropout", "weight", "seed", "epoch")
    ds = xr.Dataset(
        {"test_predicted_up": (dims + ("cls",), np.full((1, 1, 1, 2, 1, 3, 2), 0.5)),
         "probe_predicted_up": (dims + ("probe_class",), np.full((1, 1, 1, 2, 1, 3, 8), 0.5))},
        coords={"batch_norm": [False], "l2": [0.0], "dropout": [0.0], "weight": [0.25, 4.0],
                "seed": [0], "epoch": np.arange(3), "cls": [3, 8], "probe_class": range(8)},
        attrs={"weighted_name": "8", "other_name": "3", "steps_per_epoch": 6,
               "config": json.dumps({"network": "cnn", "batch_size": 30})})
    title = _title(digits.importance_figure(ds))
    assert "CNN, digits 3 vs 8" in title and "batch size 30" in title


def _record(solver, rung, error, status="ok", kind="explicit"):
    return {"problem": "p", "solver": solver, "kind": kind, "dtype": "float64",
            "rtol": rung, "fixed_steps": 0, "error": error, "steps": 100,
            "rejected_steps": 0, "vector_field_evals": int(1e3 / rung ** 0.2),
            "compile_seconds": 1.0, "run_seconds": 1e-4 / rung ** 0.1, "status": status}


def _top_marks(ax, marker):
    return sum(len(line.get_xdata()) for line in ax.get_lines()
               if line.get_label() == "_top_edge" and line.get_marker() == marker)


def _overlapping(labels) -> bool:
    boxes = [t.get_window_extent() for t in labels if t.get_visible() and t.get_text()]
    return any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_f7_marks_failed_runs_instead_of_dropping_them():
    records = [_record("Tsit5", r, 10 * r) for r in (1e-3, 1e-5, 1e-7, 1e-9)]
    records += [_record("Kvaerno5", 1e-3, float("nan"), "max_steps", "implicit"),
                _record("Kvaerno5", 1e-5, None, "nonfinite", "implicit"),  # null from JSON
                _record("Kvaerno5", 1e-7, 3.0, kind="implicit"),
                _record("Kvaerno5", 1e-9, 1e-8, kind="implicit")]
    fig = solvers.work_precision_figure(records)
    fig.canvas.draw()
    top, bottom = fig.axes[:2] if fig.axes[0].get_xlabel().startswith("vector") else \
        fig.axes[1::-1]
    for ax in (top, bottom):
        assert _top_marks(ax, solvers.FAILED) == 2
        assert _top_marks(ax, solvers.INACCURATE) == 1
        assert "2 did not finish" in ax.texts[0].get_text()
        assert ax.get_ylim()[1] == 1.0
        assert not _overlapping(ax.get_xticklabels()) and not _overlapping(
            ax.get_yticklabels())
    assert {"Tsit5", "Kvaerno5", "did not finish", "error > 1"} <= {
        t.get_text() for t in fig.legends[0].get_texts()}


def test_gd_figure_has_a_first_order_guide_and_marks_failures():
    records = [{"problem": "p", "method": "GD", "eta": eta, "steps": 10, "status": "ok",
                "error": 0.3 * eta, "fitted_order": 1.0} for eta in (0.5, 0.25, 0.125)]
    records.append({"problem": "p", "method": "GD", "eta": 2.0, "steps": 10,
                    "status": "nonfinite", "error": float("nan"), "fitted_order": 1.0})
    fig = solvers.discretization_figure(records)
    ax = fig.axes[0]
    assert ax.get_xscale() == ax.get_yscale() == "log"
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["GD, order 1.00", "first order (eta)"]
    guide = next(line for line in ax.get_lines() if line.get_label() == "first order (eta)")
    x, y = guide.get_xdata(), guide.get_ydata()
    np.testing.assert_allclose(np.log(y[1] / y[0]) / np.log(x[1] / x[0]), 1.0)
    assert _top_marks(ax, solvers.FAILED) == 1


@pytest.mark.parametrize("name", ["f3.xyz", "f3", "figure.png.bak"])
def test_figure_path_check_refuses_unknown_formats(tmp_path, name):
    path = tmp_path / name
    with pytest.raises(ValueError) as info:
        style.check_figure_path("--out", path)
    message = str(info.value)
    assert "`--out`" in message and str(path) in message and ".png" in message
    assert ".pdf" in message and ".svg" in message
    fig = plt.figure()
    with pytest.raises(ValueError, match="--out|path"):
        style.save(fig, path)
    assert not path.exists() and not plt.fignum_exists(fig.number)


def test_figure_path_check_refuses_a_folder_and_accepts_known_formats(tmp_path):
    folder = tmp_path / "figure.png"
    folder.mkdir()
    with pytest.raises(ValueError, match="is a folder"):
        style.check_figure_path("path", folder)
    for name in ("f.png", "f.PDF", "f.svg"):
        assert style.check_figure_path("path", tmp_path / name) == tmp_path / name
    assert {"png", "pdf", "svg", "eps"} <= set(style.figure_formats())
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    style.save(fig, tmp_path / "f.svg", dpi=40)
    assert (tmp_path / "f.svg").read_text().startswith("<?xml")
