"""A sweep's datasets, alone: chunks from plain arrays, assembled over the grid, and figure F3
reading what the sweep recorded."""

import json

import matplotlib
import matplotlib.pyplot
import numpy as np
import pytest

import ssm_jax as sj
from ssm_jax.plots import learning_time_ratio_figure
from ssm_jax.plots.sweeps import f3_missing
from ssm_jax.sweeps.dataset import (
    chunk_dataset,
    grid_class_groups,
    grid_predictions,
    label_by_grid,
    merge_chunks,
)

matplotlib.use("Agg")

GROUPS = {"majority": [0, 1], "minority": [2, 3]}
TS = np.linspace(0.0, 20.0, 41)


def _rates(index):
    """Class c of member `index` progresses at a constant rate: progress = rate * t."""
    return 1.0 / (2.0 * (1.0 + index + np.arange(4)))


def _outputs(members):
    """What a chunk of these grid members records: progress linear in time, a loss that
    names the member, and step counts."""
    members = np.asarray(members)
    progress = np.stack([TS[:, None] * _rates(i) for i in members])
    loss = members[:, None] * 100.0 + np.arange(TS.size)
    stats = {"num_steps": 10 + members, "status": np.zeros(members.size, int)}
    return {"class_progress": progress, "loss": loss}, stats


def _chunk(members, filled_to, **kwargs):
    recorded, stats = _outputs(np.concatenate([members, np.repeat(members[-1:],
                                                                  filled_to - len(members))]))
    return chunk_dataset(recorded, stats, members, record_times=TS,
                         **{"class_groups": GROUPS, **kwargs})


def _point_ratio(a, b):
    return {"predicted_ratio": a + b / 10}


def test_predictions_are_checked_before_compute():
    grid = sj.Grid(a=[0, 1], b=[10, 20])
    points = [grid.point(i) for i in range(grid.size)]
    values = grid_predictions(_point_ratio, points)
    np.testing.assert_array_equal(values["predicted_ratio"], [1.0, 2.0, 2.0, 3.0])
    assert grid_predictions(None, points) == {}
    with pytest.raises(ValueError, match="predict"):
        grid_predictions(lambda a, b: a + b, points)
    with pytest.raises(ValueError, match="same"):
        grid_predictions(lambda a, b: {"x": 1.0} if a else {"y": 1.0}, points)


def test_a_chunk_drops_its_fill_and_groups_classes():
    members = np.array([4, 1, 3])
    predictions = {"predicted_ratio": np.arange(6.0) * 2}
    steps = 10.0 + members
    waste = sj.sweeps.Vmap().waste(steps, None)  # members in lockstep wait for the slowest
    ds = _chunk(members, 4, predictions=predictions, waste=waste, index=7, device="cpu:0")
    assert ds.sizes["run"] == 3 and list(ds.run.values) == [4, 1, 3]
    assert ds.class_progress.dims == ("run", "time", "cls")
    np.testing.assert_allclose(ds.predicted_ratio, [8.0, 2.0, 6.0])
    for i, member in enumerate(members):
        rates = _rates(member)
        group_rates = [rates[g].mean() for g in GROUPS.values()]
        np.testing.assert_allclose(ds.learning_time[i], 0.5 / np.array(group_rates), rtol=1e-12)
    assert ds.attrs["chunk_size"] == 3 and ds.attrs["chunk_index"] == 7
    assert ds.attrs["chunk_waste"] == pytest.approx(1 - steps.mean() / steps.max())
    assert sj.sweeps.Map().waste(steps, None) == 0.0  # members one after another


def test_chunks_assemble_into_the_grid():
    grid = sj.Grid(a=[0, 1, 2], b=[10, 20])
    points = [grid.point(i) for i in range(grid.size)]
    predictions = grid_predictions(_point_ratio, points)
    order = [5, 0, 3, 1, 4, 2]
    parts = [_chunk(np.array(order[i:i + 4]), 4, predictions=predictions, index=i // 4,
                    compile_seconds=1.0, run_seconds=2.0, device="cpu:0")
             for i in (4, 0)]  # written in any order
    manifest = {"grid": grid.to_dict(), "order": order, "metadata": {"x": 1}}
    ds = label_by_grid(merge_chunks(parts), grid, manifest)
    assert ds.loss.dims == ("a", "b", "time")
    assert ds.learning_time.dims == ("a", "b", "cls")
    for index, point in enumerate(points):
        member = ds.sel(point)
        assert float(member.loss.isel(time=0)) == 100.0 * index
        assert float(member.predicted_ratio) == point["a"] + point["b"] / 10
    assert ds.chunk_size.dims == ("chunk",) and sorted(ds.chunk_size.values) == [2, 4]
    assert ds.attrs["compile_seconds"] == 2.0 and ds.attrs["run_seconds"] == 4.0
    assert json.loads(ds.attrs["config"]) == {"grid": grid.to_dict(), "metadata": {"x": 1}}
    assert "version_jax" in ds.attrs


def _f3_dataset(with_prediction=True):
    grid = sj.Grid(ratio=[1.0, 4.0, 16.0], power=[0.0, 1.0], seed=[0, 1])
    points = [grid.point(i) for i in range(grid.size)]
    predict = (lambda ratio, power, seed: {"predicted_ratio": ratio ** (0.5 - power)})
    predictions = grid_predictions(predict, points) if with_prediction else None
    parts = [_chunk(np.arange(grid.size), grid.size, predictions=predictions, index=0,
                    compile_seconds=0.0, run_seconds=0.0, device="cpu:0")]
    return label_by_grid(merge_chunks(parts), grid, {"grid": grid.to_dict()})


def test_f3_draws_the_recorded_closed_form():
    fig = learning_time_ratio_figure(_f3_dataset())
    ax = fig.axes[0]
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"
              and len(line.get_xdata())]
    assert len(dashed) == 2
    np.testing.assert_allclose(dashed[1].get_ydata(), np.array([1.0, 4.0, 16.0]) ** -0.5)
    matplotlib.pyplot.close(fig)
    with pytest.raises(ValueError, match="predicted_ratio"):
        learning_time_ratio_figure(_f3_dataset(with_prediction=False))


def test_class_groups_follow_each_members_own_classes():
    points = [{"a": 0}, {"a": 1}, {"a": 0}]  # the majority: classes 0..a
    groups = grid_class_groups(lambda a: {"majority": list(range(a + 1)),
                                          "minority": list(range(a + 1, 4))}, points, 4)
    assert groups.names == ("majority", "minority") and groups.table.shape == (2, 4)
    assert groups.describe() == [{"majority": [0], "minority": [1, 2, 3]},
                                 {"majority": [0, 1], "minority": [2, 3]}]
    ds = _chunk(np.array([0, 1, 2]), 3, class_groups=groups)
    for i, member in enumerate([0, 1, 2]):
        rates = _rates(member)
        split = [1, 2, 1][i]
        expected = 0.5 / np.array([rates[:split].mean(), rates[split:].mean()])
        np.testing.assert_allclose(ds.learning_time[i], expected, rtol=1e-12)
        np.testing.assert_array_equal(ds.group_size[i], [split, 4 - split])
    same = grid_class_groups(GROUPS, [], 4)
    assert same.describe() == GROUPS and same.member is None


def test_members_that_did_not_finish_carry_nan():
    """After a stop, diffrax leaves inf at the saves it did not reach: they did not happen."""
    members = np.array([0, 1])
    recorded, stats = _outputs(members)
    recorded["class_progress"][1, 5:] = np.inf  # member 1 stopped before reaching 1/2
    recorded["loss"][1, 5:] = np.inf
    stats = dict(stats, status=np.array([0, 1]), stop_time=np.array([20.0, np.inf]))
    ds = chunk_dataset(recorded, stats, members, record_times=TS, class_groups=GROUPS)
    assert np.isnan(ds.loss[1, 5:]).all() and np.isfinite(ds.loss[1, :5]).all()
    assert np.isnan(ds.learning_time[1]).all()  # not the first save after the stop
    assert np.isnan(ds.stop_time[1]) and float(ds.stop_time[0]) == 20.0
    assert np.isfinite(ds.learning_time[0]).all()


def test_training_sweeps_count_time_in_steps():
    grid = sj.Grid(a=[0, 1])
    parts = [_chunk(np.arange(2), 2, index=0, compile_seconds=0.0, run_seconds=0.0,
                    device="cpu:0")]
    manifest = {"grid": grid.to_dict(), "dynamics": {"kind": "train"}}
    ds = label_by_grid(merge_chunks(parts), grid, manifest)
    assert ds.time.attrs["units"] == "steps" and ds.learning_time.attrs["units"] == "steps"
    assert ds.a.attrs["long_name"] == "grid axis a"
    for name in ds.variables:
        assert "long_name" in ds[name].attrs, name
    flow = label_by_grid(merge_chunks(parts), grid, {"grid": grid.to_dict(),
                                                     "dynamics": {"kind": "flow"}})
    assert flow.time.attrs["units"] == "1"


def test_f3_says_what_a_dataset_lacks():
    assert f3_missing(_f3_dataset()) is None
    ds = _f3_dataset()
    assert "a sweep over `power`" in f3_missing(ds.isel(power=0, drop=True))
    never = ds.assign(learning_time=ds.learning_time * np.nan)
    assert "run longer" in f3_missing(never)
    with pytest.raises(ValueError, match="F3 needs members that learn both groups"):
        learning_time_ratio_figure(never)
