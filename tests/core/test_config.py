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
        # on the defaults (no file) the section is created and the value is refused by type
        ("train.epochs.x=1", r"train.epochs: expected int, found dict \{'x': 1\}"),
        ("noequals", r"expected KEY=VALUE"),
        ("data.augment=brutal", r"data.augment: expected one of"),
    ],
)
def test_bad_overrides_are_clear_errors(override, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_config(None, [override])


def test_override_below_a_value_is_a_clear_error():
    # a key already holding a value (set before, or by a config file) cannot become a section
    with pytest.raises(ConfigError, match=r"'train.epochs' is a value, not a section"):
        load_config(None, ["train.epochs=3", "train.epochs.x=1"])


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


# -- numbers as YAML 1.2 writes them (issue: `--set optim.lr=1e-4` was read as the string '1e-4')


@pytest.mark.parametrize("raw, value", [("1e-4", 1e-4), ("5E-4", 5e-4), (".5", 0.5), ("1.5e-3", 1.5e-3), ("2e+1", 20.0),
                                        ("-1e-4", None)])
def test_scientific_notation_overrides_are_floats(raw, value):
    if value is None:  # parsed as the number it is, then refused by the key's own rule
        with pytest.raises(ConfigError, match=r"optim.lr: expected a positive number, found -0.0001"):
            load_config(None, [f"optim.lr={raw}"])
        return
    cfg = load_config(None, [f"optim.lr={raw}"])
    assert isinstance(cfg.optim.lr, float) and cfg.optim.lr == value


def test_underscored_int_and_float_exponent_for_int_keys():
    cfg = load_config(None, ["train.epochs=1_000", "data.eval_batch_size=2_048"])
    assert cfg.train.epochs == 1000 and cfg.data.eval_batch_size == 2048 and isinstance(cfg.train.epochs, int)
    # an exponent makes a float: a whole one is taken for an int key, a fractional one refused (no truncation)
    assert load_config(None, ["train.epochs=1e3"]).train.epochs == 1000
    with pytest.raises(ConfigError, match=r"train.epochs: expected int, found float 1.5"):
        load_config(None, ["train.epochs=1.5e0"])


def test_scientific_notation_in_a_yaml_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("optim:\n  lr: 1e-4\n  weight_decay: 5E-4\nschedule:\n  gamma: .5\n")
    cfg = load_config(p)
    assert (cfg.optim.lr, cfg.optim.weight_decay, cfg.schedule.gamma) == (1e-4, 5e-4, 0.5)
    assert isinstance(cfg.optim.lr, float) and isinstance(cfg.optim.weight_decay, float)
    # and it survives the round trip through the run directory's config.yaml
    p.write_text(dump_yaml(cfg))
    assert load_config(p) == cfg


def test_strings_that_look_like_numbers_stay_strings_where_quoted():
    cfg = load_config(None, ["name='1e-4'"])
    assert cfg.name == "1e-4"


# -- the sectioned layout: task keys live in the task's own section


@pytest.mark.parametrize("overrides, pattern", [
    (["eval.tta=true"], r"eval.tta is a segmentation option now: write it as segmentation.tta"),
    (["task=segmentation", "eval.tta_scales=[1.0, 1.25]"],
     r"eval.tta_scales is a segmentation option now: write it as segmentation.tta_scales"),
    (["task=segmentation", "train.loss=dice"], r"train.loss is a segmentation option now: write it as segmentation.loss"),
    (["task=segmentation", "train.batch_dice=false"], r"train.batch_dice is a segmentation option now: write it as "
                                                       r"segmentation.batch_dice"),
    (["task=segmentation", "eval.postprocess=largest"], r"write it as segmentation.postprocess"),
    (["task=segmentation", "eval.fill_empty=0.5"], r"write it as segmentation.fill_empty"),
    (["train.class_weights=balanced"], r"train.class_weights is a classification option now: write it as "
                                       r"classification.class_weights"),
    (["train.label_smoothing=0.1"], r"write it as classification.label_smoothing"),
    # detection and counting both have it: the message names the run's own section
    (["task=counting", "data.crop=48"], r"data.crop is a detection/counting option now: write it as counting.crop"),
    (["task=detection", "data.crop=48"], r"data.crop is a detection/counting option now: write it as detection.crop"),
    (["data.crop=48"], r"data.crop is a detection/counting option now: write it as detection.crop"),
    (["task=counting", "train.recompute_bn=true"], r"write it as counting.recompute_bn"),
    (["task=detection", "eval.max_detections=10"], r"write it as detection.max_detections"),
    (["task=detection", "eval.nms_iou=0.3"], r"write it as detection.nms_iou"),
    (["task=counting", "eval.score_threshold=0.5"], r"write it as counting.score_threshold"),
])
def test_a_moved_key_names_its_new_section(overrides, pattern):
    with pytest.raises(ConfigError, match=pattern):
        load_config(None, overrides)


def test_a_moved_key_in_a_yaml_file_names_its_new_section(tmp_path):
    p = tmp_path / "old.yaml"
    p.write_text("task: segmentation\neval:\n  n_resamples: 100\n  tta: true\n")
    with pytest.raises(ConfigError, match=r"eval.tta is a segmentation option now: write it as segmentation.tta"):
        load_config(p)
    p.write_text("task: segmentation\neval:\n  n_resamples: 100\nsegmentation:\n  tta: true\n")
    assert load_config(p).options.tta is True


def test_the_task_section_holds_the_task_options():
    cfg = load_config(None, ["task=segmentation", "segmentation.tta=true", "segmentation.tta_scales=[0.75, 1.0]",
                             "segmentation.loss=dice", "segmentation.batch_dice=false"])
    o = cfg.options
    assert (o.tta, o.tta_scales, o.loss, o.batch_dice) == (True, (0.75, 1.0), "dice", False)
    assert cfg.to_dict()["segmentation"]["tta_scales"] == [0.75, 1.0] and "options" not in cfg.to_dict()
    cnt = load_config(None, ["task=counting", "counting.crop=48", "counting.density_sigma=3"])
    assert cnt.options.crop == 48 and cnt.options.density_sigma == 3.0
    with pytest.raises(ConfigError, match=r"unknown config key 'detection.density_sigma'"):
        load_config(None, ["task=detection", "detection.density_sigma=3"])
    with pytest.raises(ConfigError, match=r"segmentation.tta_scales: expected a non-empty list"):
        load_config(None, ["task=segmentation", "segmentation.tta_scales=[]"])
    with pytest.raises(ConfigError, match=r"segmentation.fill_empty: expected a fraction"):
        load_config(None, ["task=segmentation", "segmentation.fill_empty=1.5"])


@pytest.mark.parametrize("overrides, section, task", [
    (["segmentation.tta=true"], "segmentation", "classification"),
    (["task=segmentation", "classification.class_weights=balanced"], "classification", "segmentation"),
    (["task=detection", "counting.density_sigma=3"], "counting", "detection"),
    (["task=counting", "detection.crop=48"], "detection", "counting"),
])
def test_the_section_of_another_task_is_refused(overrides, section, task):
    with pytest.raises(ConfigError, match=rf"section '{section}' applies to {section} runs, but this run's task is "
                                          rf"'{task}'; set task: {section} or remove the section"):
        load_config(None, overrides)


def test_the_section_of_another_task_is_refused_in_a_yaml_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("task: classification\nsegmentation:\n  tta: true\n")
    with pytest.raises(ConfigError, match=r"section 'segmentation' applies to segmentation runs, but this run's task "
                                          r"is 'classification'"):
        load_config(p)


# -- the defaults follow the task (issue 21, fault 10)


def test_setting_the_task_picks_up_its_defaults():
    cfg = load_config(None, ["task=segmentation"])
    assert (cfg.task, cfg.data.dataset, cfg.model.name) == ("segmentation", "synthetic/seg2d", "unet_small")
    assert type(cfg.options).__name__ == "SegmentationOptions"
    # the same through a copy of the classification defaults
    again = RunConfig().with_overrides(["task=segmentation"])
    assert (again.data.dataset, again.model.name) == ("synthetic/seg2d", "unet_small") and again == cfg
    # what was set explicitly stays
    mine = load_config(None, ["task=segmentation", "model.name=resunet", "data.dataset=synthetic/seg3d"])
    assert (mine.data.dataset, mine.model.name) == ("synthetic/seg3d", "resunet")
    for task, dataset, model in (("classification", "synthetic/binary", "cnn_small"),
                                 ("detection", "synthetic/lesions", "centernet"),
                                 ("counting", "synthetic/cells", "density_counter")):
        c = load_config(None, [f"task={task}"])
        assert (c.data.dataset, c.model.name) == (dataset, model), task


def test_cli_train_task_parses_to_the_task_defaults(monkeypatch, capsys, tmp_path):
    """`openmia train --task segmentation` (no --dataset/--model) reaches the engine with the
    segmentation defaults; the engine is replaced here, nothing is trained."""
    from types import SimpleNamespace

    import openmia.engine.run_dir as run_dir
    from openmia.cli.main import main

    seen = {}

    def fake_train(cfg, **kwargs):
        seen["cfg"] = cfg
        return SimpleNamespace(table="(table)", best_epoch=1, epochs_done=1, train_seconds=0.0, run_dir=tmp_path)

    monkeypatch.setattr(run_dir, "train", fake_train)
    assert main(["-q", "train", "--task", "segmentation", "--epochs", "2", "--set", "optim.lr=1e-4",
                 "--set", "segmentation.tta=true"]) == 0
    cfg = seen["cfg"]
    assert (cfg.task, cfg.data.dataset, cfg.model.name) == ("segmentation", "synthetic/seg2d", "unet_small")
    assert cfg.train.epochs == 2 and cfg.optim.lr == 1e-4 and cfg.options.tta is True
    assert "run directory:" in capsys.readouterr().out
    # a moved key on the command line is the error naming its new section (exit code 2, nothing trained)
    seen.clear()
    assert main(["-q", "train", "--task", "segmentation", "--set", "eval.tta=true"]) == 2
    assert "write it as segmentation.tta" in capsys.readouterr().err and not seen


# -- run directories of the earlier flat layout are migrated on load

OLD_SEGMENTATION_CONFIG = """\
task: segmentation
data:
  dataset: synthetic/seg2d
  size: null
  root: null
  batch_size: 32
  eval_batch_size: 256
  augment: flip
  fold: 0
  crop: null
model:
  name: unet_small
  kwargs: {width: 4}
optim: {name: adam, lr: 0.001, weight_decay: 0.0, momentum: 0.9}
schedule: {name: none, milestones: [0.5, 0.75], step_epochs: 10, gamma: 0.1, warmup_epochs: 0}
train:
  epochs: 2
  max_minutes: null
  budget_clock: wall
  seed: 0
  deterministic: false
  threads: 1
  class_weights: none
  select_metric: auto
  pretrain_epochs: 0
  label_smoothing: 0.0
  loss: LOSS
  batch_dice: false
  ema: 0.0
  precision: fp32
  recompute_bn: false
  init_from: null
  refit: false
eval:
  n_resamples: 100
  seed: 0
  tta: true
  tta_scales: [0.75, 1.0]
  postprocess: largest
  fill_empty: 0.0
  max_detections: null
  nms_iou: 0.5
  score_threshold: null
out_dir: runs
name: null
"""


def test_an_old_flat_run_config_is_migrated_on_load(tmp_path, caplog):
    import logging

    from openmia.config import load_run_config

    p = tmp_path / "config.yaml"
    p.write_text(OLD_SEGMENTATION_CONFIG.replace("LOSS", "dice"))
    with caplog.at_level(logging.INFO, logger="openmia.config"):
        cfg = load_run_config(p)
    o = cfg.options
    assert cfg.task == "segmentation" and (cfg.data.dataset, cfg.model.name) == ("synthetic/seg2d", "unet_small")
    assert (o.loss, o.batch_dice, o.tta, o.tta_scales, o.postprocess, o.fill_empty) == \
        ("dice", False, True, (0.75, 1.0), "largest", 0.0)
    # the shared keys are kept as they were
    assert (cfg.data.batch_size, cfg.data.augment, cfg.train.epochs, cfg.train.threads, cfg.eval.n_resamples) == \
        (32, "flip", 2, 1, 100)
    # the keys of other tasks (they held their defaults) are gone, and the load says what it did
    d = cfg.to_dict()
    assert "crop" not in d["data"] and "class_weights" not in d["train"] and "max_detections" not in d["eval"]
    assert set(d) == {"task", "data", "model", "optim", "schedule", "train", "eval", "segmentation", "out_dir", "name"}
    assert "earlier config layout" in caplog.text and "eval.tta -> segmentation.tta" in caplog.text
    assert "data.crop dropped (does not apply to segmentation)" in caplog.text
    # written back in the new layout it loads as it is (and as a plain config, which refuses the old layout)
    p2 = tmp_path / "new.yaml"
    p2.write_text(dump_yaml(cfg))
    assert load_run_config(p2) == cfg == load_config(p2)
    with pytest.raises(ConfigError, match=r"train.class_weights is a classification option now: write it as "
                                          r"classification.class_weights"):
        load_config(p)
    # overrides (e.g. of a re-evaluation) apply on top of the migrated config
    assert load_run_config(p, ["segmentation.tta=false"]).options.tta is False


def test_an_old_run_config_with_the_old_default_loss_is_migrated(tmp_path):
    """The earlier layout's default ``train.loss: auto`` meant dice_ce for segmentation: every old
    segmentation run directory written without an explicit loss has it."""
    from openmia.config import load_run_config

    p = tmp_path / "config.yaml"
    p.write_text(OLD_SEGMENTATION_CONFIG.replace("LOSS", "auto"))
    assert load_run_config(p).options.loss == "dice_ce"


def test_an_old_object_run_config_is_migrated(tmp_path):
    from openmia.config import load_run_config

    p = tmp_path / "config.yaml"
    p.write_text("task: counting\ndata: {dataset: synthetic/cells, crop: 48}\nmodel: {name: density_counter}\n"
                 "train: {epochs: 1, loss: auto, recompute_bn: true, class_weights: none}\n"
                 "eval: {tta: false, max_detections: 500, nms_iou: 0.3, score_threshold: null}\n")
    o = load_run_config(p).options
    assert (o.crop, o.recompute_bn, o.max_detections, o.nms_iou, o.score_threshold) == (48, True, 500, 0.3, None)


def test_whole_number_floats_are_accepted_for_integer_keys():
    from openmia.config import load_config
    from openmia.errors import ConfigError

    assert load_config(None, ["eval.n_resamples=5e3", "train.epochs=2E1"]).eval.n_resamples == 5000
    with pytest.raises(ConfigError, match="eval.n_resamples: expected int, found float 5.5"):
        load_config(None, ["eval.n_resamples=5.5"])
