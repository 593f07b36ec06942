"""Designs beyond the grid: `Points` (one member per index) beside `Grid`, and a sweep's
dataset over `point`, each setting a coordinate on it."""

import json

import numpy as np
import pytest

import ssm_jax as sj
from ssm_jax.sweeps.dataset import chunk_dataset, label_by_grid, merge_chunks
from ssm_jax.sweeps.grid import AbstractDesign
from ssm_jax.sweeps.points import Points, design_from_dict

TS = np.linspace(0.0, 4.0, 5)


def test_points_take_one_entry_of_every_setting():
    rng = np.random.default_rng(0)
    ratio = rng.uniform(1, 100, 6)
    points = Points(ratio=ratio, seed=np.arange(6), power=[0.5] * 6)
    assert isinstance(points, AbstractDesign) and isinstance(sj.Grid(a=[1]), AbstractDesign)
    assert points.size == 6 and points.names == ("ratio", "seed", "power")
    assert points.dims == ("point",)
    assert points.point(4) == {"ratio": ratio[4], "seed": 4, "power": 0.5}
    assert type(points.point(4)["seed"]) is int
    np.testing.assert_array_equal(points.coordinates()["ratio"], ratio)
    assert repr(points) == "Points(ratio[6], seed[6], power[6])"
    again = design_from_dict(points.kind, json.loads(json.dumps(points.to_dict())))
    assert isinstance(again, Points)
    for name in points.names:
        np.testing.assert_array_equal(again.coordinates()[name], points.coordinates()[name])


def test_a_grid_rebuilds_from_its_kind_and_enumerates_row_major():
    grid = sj.Grid(a=[0, 1, 2], b=[10, 20])
    again = design_from_dict(grid.kind, grid.to_dict())
    assert isinstance(again, sj.Grid) and again.dims == ("a", "b")
    assert [again.point(i) for i in range(6)] == [grid.point(i) for i in range(6)]
    assert grid.point(3) == {"a": 1, "b": 20}
    np.testing.assert_array_equal(grid.coordinates()["b"], [10, 20] * 3)


@pytest.mark.parametrize("axes, match", [
    ({}, "at least one setting"),
    ({"ratio": [1.0, 2.0], "seed": [0]}, "one length"),
    ({"ratio": [1.0, np.nan]}, "finite"),
    ({"ratio": []}, "non-empty"),
    ({"ratio": ["a", "b"]}, "numbers"),
])
def test_bad_points_are_refused(axes, match):
    with pytest.raises(ValueError, match=match):
        Points(**axes)


def test_an_unknown_design_kind_is_refused():
    with pytest.raises(ValueError, match="`kind` = 'lattice' is not allowed"):
        design_from_dict("lattice", {"a": [1]})


def test_a_points_sweep_is_labelled_over_point():
    points = Points(ratio=[4.0, 1.0, 4.0, 2.5], seed=[0, 1, 1, 2])
    order = [2, 0, 3, 1]
    parts = []
    for index, members in enumerate((order[:3], order[3:])):
        members = np.asarray(members)
        recorded = {"loss": members[:, None] * 10.0 + TS}
        stats = {"num_steps": 5 + members, "status": np.zeros(members.size, int)}
        parts.append(chunk_dataset(recorded, stats, members, record_times=TS, index=index,
                                   compile_seconds=0.0, run_seconds=1.0, device="cpu:0"))
    manifest = {"grid": points.to_dict(), "design": points.kind, "order": order}
    ds = label_by_grid(merge_chunks(parts), points, manifest)
    assert ds.loss.dims == ("point", "time") and ds.num_steps.dims == ("point",)
    np.testing.assert_array_equal(ds.point.values, np.arange(4))
    np.testing.assert_array_equal(ds.ratio.values, [4.0, 1.0, 4.0, 2.5])
    assert ds.ratio.dims == ("point",) and ds.seed.dims == ("point",)
    np.testing.assert_array_equal(ds.loss.isel(time=0).values, [0.0, 10.0, 20.0, 30.0])
    np.testing.assert_array_equal(ds.num_steps.values, [5, 6, 7, 8])
    assert ds.ratio.attrs["long_name"].startswith("imbalance ratio")
    assert json.loads(ds.attrs["config"])["design"] == "points"
