from __future__ import annotations

import pytest

from openmia.config import RunConfig, dump_yaml, load_config
from openmia.errors import ConfigError


def test_defaults_round_trip_through_yaml(tmp_path):
    cfg = load_config(None, ["train.epochs=3", "model.kwargs.width=16", "schedule.milestones=[0.3, 0.6]"])
    assert cfg.train.epochs == 3 and cfg.model.kwargs == {"width": 16} and cfg.schedule.milestones == (0.3, 0.6)
    p = tmp_path / "c.yaml"
    p.write_text(dump_yaml(cfg))
    again = load_config(p)
    assert again == cfg and again.hash() == cfg.hash()
    assert cfg.hash() != RunConfig().hash()


def test_int_is_accepted_for_float_and_coerced():
    cfg = load_config(None, ["optim.lr=1"])
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)


@pytest.mark.parametrize(
    "override, pattern",
    [
        ("train.epoch=3", r"unknown config key 'train.epoch'. Did you mean train.epochs\?.*Valid keys here: train.epochs"),
        ("trian.epochs=3", r"unknown config key 'trian'. Did you mean train\?"),
        ("optim.lr=abc", r"optim.lr: expected float, found str 'abc'"),
        ("optim.name=adan", r"optim.name: expected one of 'adam', 'adamw', 'sgd', found 'adan' \(did you mean 'adam'\?\)"),
        ("train.epochs=0", r"train.epochs: expected a positive number, found 0"),
        ("schedule.milestones=[0.5, 1.5]", r"schedule.milestones: expected fractions in \(0, 1\)"),
        ("train.epochs.x=1", r"'train.epochs' is a value, not a section"),
        ("noequals", r"expected KEY=VALUE"),
        ("data.augment=brutal", r"data.augment: expected one of"),
    ],
)
def test_bad_overrides_are_clear_errors(override, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_config(None, [override])


def test_bad_yaml_file(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml is not valid YAML"):
        load_config(p)
    p.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping at the top level, found list"):
        load_config(p)
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
