import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import typer
from typer.testing import CliRunner
import xarray as xr

import ssm_jax as sj
from ssm_jax.cli.experiments import digits as digits_command
from ssm_jax.data.digits import digit_pair, digits_images, step_imbalanced_digits
from ssm_jax.data.imbalance import class_weights
from ssm_jax.dynamics import network_training as nt
from ssm_jax.experiments import digits as experiment
from ssm_jax.experiments.network_runs import train_networks
from ssm_jax.models.networks import CNN, MLP, Conv3x3
from ssm_jax.sweeps.batching.memberwise import run_members


@pytest.fixture(scope="module")
def imbalanced():
    return step_imbalanced_digits()


# ---------------------------------------------------------------- data


def test_step_imbalance_counts_balanced_test_and_disjoint_splits(imbalanced):
    assert imbalanced.counts.tolist() == [90] * 5 + [9] * 5
    assert np.bincount(imbalanced.y_test).tolist() == [80] * 10
    assert not set(imbalanced.train_index) & set(imbalanced.test_index)
    _, digits = digits_images()
    np.testing.assert_array_equal(digits[imbalanced.train_index], imbalanced.y_train)
    # Standardized with training statistics: per-pixel mean 0, overall scale 1.
    np.testing.assert_allclose(imbalanced.x_train.mean(0), 0.0, atol=1e-12)
    assert imbalanced.x_train.std() == pytest.approx(1.0)

    other = step_imbalanced_digits(4.0, 5, majority_digits=(7, 9), seed=3)
    assert other.counts.tolist() == [5] * 7 + [20, 5, 20]
    again = step_imbalanced_digits(4.0, 5, majority_digits=(7, 9), seed=3)
    np.testing.assert_array_equal(other.train_index, again.train_index)
    assert not np.array_equal(np.sort(other.test_index), np.sort(imbalanced.test_index))


def test_digit_pair_labels_and_probes():
    pair = digit_pair((1, 7), train_per_class=50, test_per_class=30, seed=1)
    assert pair.classes == (1, 7)
    assert pair.counts.tolist() == [50, 50]
    assert np.bincount(pair.y_test).tolist() == [30, 30]
    _, digits = digits_images()
    np.testing.assert_array_equal(digits[pair.train_index], np.where(pair.y_train, 7, 1))
    assert set(pair.probe_class) == set(range(10)) - {1, 7}
    assert pair.x_probe.shape == (int(np.sum(~np.isin(digits, (1, 7)))), 8, 8)
    assert not set(pair.train_index) & set(pair.test_index)


@pytest.mark.parametrize("call, name", [
    (lambda: step_imbalanced_digits(11.0, 9), "`ratio` = 11.0"),  # 99 > 94 images left
    (lambda: step_imbalanced_digits(10.0, 9, test_per_class=100), "`ratio`"),
    (lambda: step_imbalanced_digits(0.5, 9), "`ratio`"),
    (lambda: step_imbalanced_digits(majority_digits=(0, 10)), "`majority_digits`"),
    (lambda: step_imbalanced_digits(majority_digits=tuple(range(10))), "`majority_digits`"),
    (lambda: digit_pair((3, 12)), "`digits`"),
    (lambda: digit_pair((3, 3)), "`digits`"),
    (lambda: digit_pair((3,)), "`digits`"),
    (lambda: digit_pair(train_per_class=200), "`train_per_class`"),
])
def test_data_bad_input(call, name):
    with pytest.raises(ValueError, match=name):
        call()


# ---------------------------------------------------------------- networks


def test_patch_convolution_matches_lax_conv():
    for stride in (1, 2):
        conv = Conv3x3(3, 4, stride, key=jax.random.key(0))
        x = jax.random.normal(jax.random.key(1), (2, 3, 8, 8))
        expected = jax.lax.conv_general_dilated(x, conv.weight, (stride, stride),
                                                ((1, 1), (1, 1)))
        np.testing.assert_allclose(conv(x), expected + conv.bias[:, None, None], atol=1e-12)


@pytest.mark.parametrize("make, width", [
    (lambda bn, key: MLP(10, 32, batch_norm=bn, key=key), 32),
    (lambda bn, key: CNN(10, (4, 8), 16, batch_norm=bn, key=key), 16),
])
def test_networks_shapes_batch_norm_and_dropout(imbalanced, make, width):
    x = jnp.asarray(imbalanced.x_train[:40])
    plain = make(False, jax.random.key(0))
    assert isinstance(plain, sj.AbstractModel)  # the models' contract: inputs -> logits
    logits, features = plain(x), plain.features(x)
    assert logits.shape == (40, 10) and features.shape == (40, width)
    assert plain.statistics(x) is None
    # Dropout at rate 0 is the identity; at rate 1/2 it depends on (only) the key.
    np.testing.assert_array_equal(plain(x, dropout=0.0, key=jax.random.key(1)), logits)
    dropped = plain(x, dropout=0.5, key=jax.random.key(1))
    assert not np.allclose(dropped, logits)
    np.testing.assert_array_equal(plain(x, dropout=0.5, key=jax.random.key(1)), dropped)

    normed = make(True, jax.random.key(0))
    # Evaluating with the statistics of the very batch is the training-mode forward pass.
    np.testing.assert_allclose(normed(x, statistics=normed.statistics(x)), normed(x),
                               atol=1e-12)
    # A batch's own statistics differ from the training set's.
    assert not np.allclose(normed(x[:5]), normed(x[:5], statistics=normed.statistics(x)))


# ---------------------------------------------------------------- training


def _tiny_pair():
    pair = digit_pair(train_per_class=20, test_per_class=10)
    return pair, nt.NetworkData.from_split(pair)


def test_training_setting_bad_input(imbalanced):
    y = imbalanced.y_train
    with pytest.raises(ValueError, match="`class_weights`"):
        nt.training_setting(y, 10, class_weights=np.ones(9))
    with pytest.raises(ValueError, match="`importance_weights`"):
        nt.training_setting(y, 10, importance_weights=np.ones(y.size + 1))
    with pytest.raises(ValueError, match="`importance_weights`"):
        nt.training_setting(y, 10, importance_weights=-np.ones(y.size))
    with pytest.raises(ValueError, match="`momentum`"):
        nt.training_setting(y, 10, momentum=1.0)
    with pytest.raises(ValueError, match="`labels`"):
        nt.training_setting(y, 5)
    with pytest.raises(ValueError, match="`network`"):
        experiment._make_network("resnet", 10, False)
    pair, data = _tiny_pair()
    net = MLP(2, 8, key=jax.random.key(0))
    setting = nt.training_setting(pair.y_train, 2)
    with pytest.raises(ValueError, match="`record_every`"):
        nt.train_network(net, data, setting, 10, record_every=3, key=jax.random.key(0))
    with pytest.raises(ValueError, match="`batch_size`"):
        nt.train_network(net, data, setting, 10, batch_size=41, key=jax.random.key(0))
    wrong = nt.training_setting(imbalanced.y_train, 10)
    with pytest.raises(ValueError, match="example_weights"):
        nt.train_network(MLP(10, 8, key=jax.random.key(0)), data, wrong, 10,
                         key=jax.random.key(0))
    # A network built for other images is refused by name, from shapes, before compute.
    with pytest.raises(ValueError, match="`network` cannot take the training images"):
        nt.train_network(CNN(2, (2, 2), 4, image_shape=(28, 28), key=jax.random.key(0)), data,
                         setting, 10, key=jax.random.key(0))
    with pytest.raises(ValueError, match="`strides`"):
        CNN(2, (2, 2), 4, strides=(True, 2), key=jax.random.key(0))


def test_training_deterministic_and_vmapped_equals_one_by_one():
    pair, data = _tiny_pair()
    make = lambda key: CNN(2, (4, 8), 16, batch_norm=True, key=key)  # noqa: E731
    init_keys = jax.random.split(jax.random.key(0), 3)
    settings = [
        nt.training_setting(pair.y_train, 2, learning_rate=0.05, momentum=0.9, dropout=0.3,
                            importance_weights=np.where(pair.y_train == 1, 4.0, 1.0)),
        nt.training_setting(pair.y_train, 2, learning_rate=0.1, l2=1e-3),
        nt.training_setting(pair.y_train, 2, learning_rate=0.02, momentum=0.5,
                            importance_weights=np.where(pair.y_train == 1, 0.25, 1.0)),
    ]
    keys = jax.random.split(jax.random.key(1), 3)
    options = dict(record_every=3, batch_size=16)
    stacked = train_networks(nt.init_networks(make, init_keys), data, nt.stack(settings),
                                6, keys=keys, **options)
    assert stacked.metrics["test_accuracy"].shape == (3, 3, 2)
    assert stacked.metrics["probe_predicted"].shape == (3, 3, 8, 2)
    assert stacked.metrics["feature_spectrum"].shape == (3, 3, 2)
    for i in range(3):
        one = nt.train_network(make(init_keys[i]), data, settings[i], 6, key=keys[i],
                               **options)
        if i == 0:  # the same call again gives the same numbers, bit for bit
            again = nt.train_network(make(init_keys[i]), data, settings[i], 6, key=keys[i],
                                     **options)
            for name, value in one.metrics.items():
                np.testing.assert_array_equal(value, again.metrics[name])
        for name, value in one.metrics.items():
            np.testing.assert_allclose(stacked.metrics[name][i], value, rtol=1e-9,
                                       atol=1e-12, err_msg=name)
        # The parameters moved, and a different key gives a different run (dropout, batches).
        assert not np.allclose(one.final.head.weight, make(init_keys[i]).head.weight)
    other = nt.train_network(make(init_keys[0]), data, settings[0], 6, key=keys[1], **options)
    assert not np.allclose(other.final.head.weight, stacked.final.head.weight[0])


def test_new_weights_and_rates_do_not_recompile():
    pair, data = _tiny_pair()
    nets = nt.init_networks(lambda key: MLP(2, 8, key=key), jax.random.split(jax.random.key(0),
                                                                             2))
    keys = jax.random.split(jax.random.key(1), 2)
    settings = lambda w, l2: nt.stack([  # noqa: E731
        nt.training_setting(pair.y_train, 2, l2=l2, dropout=0.1 * i, learning_rate=0.1 + i,
                            importance_weights=np.where(pair.y_train == 1, w, 1.0))
        for i in range(2)])
    before = eqx.debug.get_num_traces(run_members)
    train_networks(nets, data, settings(2.0, 0.0), 4, keys=keys, record_every=2)
    train_networks(nets, data, settings(0.01, 1e-3), 4, keys=keys, record_every=2)
    assert eqx.debug.get_num_traces(run_members) - before == 1


def test_erm_learns_majorities_first_and_reweighting_narrows_the_gap(imbalanced):
    """10:1 digits, MLP of width 64, full-batch SGD (0.02, momentum 0.9), three seeds, the
    same start for ERM and gamma = 1. Measured at step 30 (float64): ERM majority minus
    minority test accuracy 0.940, 0.958, 0.948 (minorities at 0); gamma = 1: -0.128, 0.185,
    -0.083. The margins below leave room for platform noise."""
    data = nt.NetworkData.from_split(imbalanced)
    counts = imbalanced.counts
    init = jax.random.split(jax.random.key(0), 3)[np.array([0, 1, 2, 0, 1, 2])]
    networks = nt.init_networks(lambda key: MLP(10, 64, key=key), init)
    settings = nt.stack([
        nt.training_setting(imbalanced.y_train, 10, learning_rate=0.02, momentum=0.9,
                            class_weights=class_weights(counts, power))
        for power in (0.0, 0.0, 0.0, 1.0, 1.0, 1.0)])
    run = train_networks(networks, data, settings, 30, record_every=30,
                            keys=jax.random.split(jax.random.key(1), 6))
    acc = np.asarray(run.metrics["test_accuracy"])[:, -1]
    gap = acc[:, :5].mean(-1) - acc[:, 5:].mean(-1)
    erm, reweighted = gap[:3], gap[3:]
    assert np.all(erm > 0.8)
    assert np.all(acc[:3, 5:].mean(-1) < 0.1)
    assert np.all(reweighted < erm - 0.6)


# ---------------------------------------------------------------- experiments and command


def test_group_learning_steps_reads_half_way_from_chance():
    steps = np.array([0.0, 10.0, 20.0])
    # k = 2, chance 1/2: group 0 ends at 1 (half-way 0.75, reached at step 5), group 1 ends
    # at 0.9 (half-way 0.7, reached at step 10 + 10/3), and a group that stays at chance is NaN.
    accuracy = np.array([[0.5, 1.0, 1.0], [0.5, 0.6, 0.9]]).T
    learned = experiment.group_learning_steps(steps, accuracy,
                                              [np.array([True, False]),
                                               np.array([False, True])])
    np.testing.assert_allclose(learned, [5.0, 40.0 / 3.0])
    flat = experiment.group_learning_steps(steps, np.full((3, 2), 0.5), [np.ones(2, bool)])
    assert np.isnan(flat).all()


@pytest.fixture
def cli(monkeypatch):
    monkeypatch.setattr(experiment, "QUICK_REWEIGHTING", experiment.ReweightingConfig(
        networks=("mlp",), num_seeds=2, steps=20, record_every=5))
    monkeypatch.setattr(experiment, "QUICK_IMPORTANCE", experiment.ImportanceConfig(
        log2_weights=(-8, 8), l2=(0.0, 1e-3), batch_norm=(False,), dropout=(0.0,),
        num_seeds=1, epochs=3, train_per_class=30))
    app = typer.Typer()
    app.command("digits")(digits_command)
    app.command("other")(lambda: None)  # two commands: `digits` stays a subcommand
    return app


def test_command_reweighting_quick(cli, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["digits", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("F6_reweighting.png", "digits_reweighting.nc", "digits_reweighting.csv"):
        assert str(out / name) in result.output.replace("\n", "")
    assert 0 < (out / "F6_reweighting.png").stat().st_size < 300_000
    ds = xr.open_dataset(out / "digits_reweighting.nc")
    assert ds.test_accuracy.shape == (1, 3, 2, 5, 10)
    np.testing.assert_allclose(ds.predicted_ratio.sel(power=1.0), [1.0, 10 ** -0.5],
                               rtol=1e-6)
    assert "config" in ds.attrs


def test_command_importance_quick(cli, tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["digits", "--experiment", "importance", "--quick",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert 0 < (out / "F6_importance.png").stat().st_size < 300_000
    ds = xr.open_dataset(out / "digits_importance.nc")
    assert ds.probe_predicted_up.sizes == {"batch_norm": 1, "l2": 2, "dropout": 1,
                                           "weight": 2, "seed": 1, "epoch": 4,
                                           "probe_class": 8}
    # After one epoch, weight 2^8 on the 8s calls most test images 8, weight 2^-8 almost none.
    first = ds.test_predicted_up.isel(epoch=1).mean(("cls", "seed", "l2", "batch_norm",
                                                     "dropout"))
    assert float(first.sel(weight=256.0)) > 0.9 > 0.1 > float(first.sel(weight=2.0 ** -8))


def test_command_rejects_unknown_experiment(cli, tmp_path):
    result = CliRunner().invoke(cli, ["digits", "--experiment", "mnist", "--out",
                                      str(tmp_path)])
    assert result.exit_code != 0
    assert "--experiment" in result.output and "mnist" in result.output

