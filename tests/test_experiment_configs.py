"""Every experiment's settings are checked when its config is made, before any data or
compute: the message names the setting, its value and what is allowed."""

import pytest

from ssm_jax import _validate
from ssm_jax.experiments import demo, digits, importance


@pytest.mark.parametrize("make", [demo.DemoConfig, digits.ReweightingConfig,
                                  digits.ImportanceConfig, importance.ImportanceConfig,
                                  lambda: digits.QUICK_IMPORTANCE, lambda: importance.QUICK])
def test_defaults_are_accepted(make):
    make()


@pytest.mark.parametrize("make, expected", [
    (lambda: demo.DemoConfig(powers=()), "`powers` = () is not allowed: expected a sequence"),
    (lambda: demo.DemoConfig(powers=(1.0, 1.0)), "`powers` = (1.0, 1.0) is not allowed: "
                                                 "expected distinct values"),
    (lambda: demo.DemoConfig(powers=(float("nan"),)), "`powers`"),
    (lambda: demo.DemoConfig(t1=-1.0), "`t1` = -1.0 is not allowed: expected finite values "
                                       "in (0.0, inf]"),
    (lambda: demo.DemoConfig(num_saves=1), "`num_saves` = 1 is not allowed: expected an "
                                           "integer >= 2"),
    (lambda: demo.DemoConfig(init_scale=0.0), "`init_scale` = 0.0"),
    (lambda: demo.DemoConfig(num_classes=1), "`num_classes` = 1"),
    (lambda: digits.ReweightingConfig(networks=("mlp", "resnet")),
     "`networks` = ('mlp', 'resnet') is not allowed: 'resnet' is not one of 'mlp', 'cnn'"),
    (lambda: digits.ReweightingConfig(steps=10, record_every=3), "`record_every` = 3"),
    (lambda: digits.ReweightingConfig(learning_rate=-0.1), "`learning_rate` = -0.1"),
    (lambda: digits.ReweightingConfig(momentum=1.0), "`momentum` = 1.0"),
    (lambda: digits.ReweightingConfig(init_strength=0.0), "`init_strength` = 0.0"),
    (lambda: digits.ImportanceConfig(network="resnet"), "`network` = 'resnet'"),
    (lambda: digits.ImportanceConfig(dropout=(1.0,)), "`dropout`"),
    (lambda: digits.ImportanceConfig(l2=(-1e-3,)), "`l2`"),
    (lambda: digits.ImportanceConfig(batch_size=0), "`batch_size` = 0"),
    (lambda: digits.ImportanceConfig(epochs=0), "`epochs` = 0"),
    (lambda: importance.ImportanceConfig(alpha=-1.0), "`alpha` = -1.0"),
    (lambda: importance.ImportanceConfig(log2_weights=(0, 0)), "`log2_weights` = (0, 0)"),
    (lambda: importance.ImportanceConfig(models=("svm",)),
     "`models` = ('svm',) is not allowed: 'svm' is not one of 'linear', 'deep_linear', 'mlp'"),
    (lambda: importance.ImportanceConfig(l2s=(-1.0,)), "`l2s`"),
    (lambda: importance.ImportanceConfig(log10_t1=-3.0), "`log10_t1` = -3.0"),
    (lambda: importance.ImportanceConfig(snapshot_times=(1e13,)), "`snapshot_times`"),
    (lambda: importance.ImportanceConfig(grid_resolution=1), "`grid_resolution` = 1"),
])
def test_bad_settings_are_refused_when_the_config_is_made(make, expected):
    with pytest.raises(ValueError) as info:
        make()
    assert expected in str(info.value)
    assert "is not allowed" in str(info.value)


def test_axis_check():
    assert _validate.axis("x", [0.5, 1.0]) == (0.5, 1.0)
    for values in ((), 5, [[1, 2]]):
        with pytest.raises(ValueError, match="expected a sequence of at least one value"):
            _validate.axis("x", values)
