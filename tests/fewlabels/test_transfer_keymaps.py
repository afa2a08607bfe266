"""train.init_from with other libraries' names (key maps), the error when nothing fits, freezing
schedules, layer-wise lr decay, and the record in the provenance."""

from __future__ import annotations

import json
import re

import pytest
import torch

from openmia.config import load_config
from openmia.engine.loop import Loop
from openmia.engine.transfer import (KEY_MAPS, apply_freeze, block_groups, load_matching_weights, load_state,
                                     trainable_groups)
from openmia.errors import ConfigError
from openmia.models import build_model

FAST = ["model.kwargs.width=4", "train.epochs=1", "data.batch_size=32", "eval.n_resamples=50", "train.threads=1"]


# the foreign names, written out here by hand (string surgery, not the module's regexes)
def torchvision_name(k: str) -> str:
    if k.startswith("stem.0."):
        return "conv1." + k[len("stem.0."):]
    if k.startswith("stem.1."):
        return "bn1." + k[len("stem.1."):]
    if k.startswith("stages."):
        _, i, rest = k.split(".", 2)
        return f"layer{int(i) + 1}." + rest.replace("shortcut.", "downsample.")
    return k  # fc.*


def basicunet_name(k: str) -> str:
    part, idx, rest = k.split(".", 2) if k.count(".") >= 2 else (k.split(".")[0], None, k.split(".")[1])
    if part == "head":
        return "final_conv." + rest
    layer, leaf = rest.split(".", 1) if "." in rest else (None, rest)
    if part == "up":
        return f"upcat_{4 - int(idx)}.upsample.deconv.{rest}"
    conv = {"conv1": "conv_0.conv.", "conv2": "conv_1.conv.", "n1": "conv_0.adn.N.", "n2": "conv_1.adn.N."}[layer]
    if part == "enc":
        return ("conv_0." if idx == "0" else f"down_{idx}.convs.") + conv + leaf
    return f"upcat_{4 - int(idx)}.convs." + conv + leaf  # dec


def _randomised(model):
    torch.manual_seed(123)
    return {k: (torch.randn_like(v.float()).to(v.dtype) if v.dtype.is_floating_point else v + 3)
            for k, v in model.state_dict().items()}


@pytest.mark.parametrize("keymap", ["auto", "torchvision_resnet", "timm_resnet"])
def test_resnet_in_torchvision_and_timm_names_loads_every_tensor(keymap):
    model = build_model("resnet18", in_channels=3, num_classes=4, dims=2, input_size=64, width=8)
    own = _randomised(model)
    foreign = {torchvision_name(k): v for k, v in own.items()}
    assert "conv1.weight" in foreign and "layer2.0.downsample.0.weight" in foreign and "fc.weight" in foreign
    fresh = build_model("resnet18", in_channels=3, num_classes=4, dims=2, input_size=64, width=8)
    rec = load_state(fresh, foreign, keymap)
    assert rec["loaded"] == rec["total"] == len(own) and rec["fresh"] == [] and rec["unused"] == []
    assert rec["keymap"] == ("torchvision_resnet" if keymap == "auto" else keymap)
    assert rec["loaded_from"]["stages.1.0.shortcut.1.running_var"] == "layer2.0.downsample.1.running_var"
    assert all(torch.equal(fresh.state_dict()[k], own[k]) for k in own)


def test_unet_in_monai_basicunet_names_loads_every_tensor():
    kw = dict(in_channels=1, num_classes=3, dims=2, input_size=32, channels=[4, 8, 8, 16, 16])
    model = build_model("unet", **kw)
    own = _randomised(model)
    foreign = {basicunet_name(k): v for k, v in own.items()}
    # MONAI's convolutions also carry a bias (openmia's, followed by a norm, do not): unused
    foreign["down_1.convs.conv_0.conv.bias"] = torch.zeros(8)
    fresh = build_model("unet", **kw)
    rec = load_state(fresh, foreign)
    assert rec["keymap"] == "monai_basicunet" and rec["loaded"] == rec["total"] == len(own)
    assert rec["unused"] == ["down_1.convs.conv_0.conv.bias"]
    assert all(torch.equal(fresh.state_dict()[k], own[k]) for k in own)


def test_a_real_monai_resnet_loads_and_computes_the_same_function():
    """Cross-check against the independent implementation: MONAI's own ResNet-18 (torchvision
    names; stride-2 stem as torchvision) loads into openmia's, every tensor, and both give the
    same logits (its downsample convolutions have a bias openmia's lack: set to 0, listed unused)."""
    monai_nets = pytest.importorskip("monai.networks.nets")
    torch.manual_seed(0)
    ref = monai_nets.resnet18(spatial_dims=2, n_input_channels=3, num_classes=5, conv1_t_stride=2).eval()
    with torch.no_grad():
        for n, p in ref.named_parameters():
            if n.endswith("downsample.0.bias"):
                p.zero_()
    model = build_model("resnet18", in_channels=3, num_classes=5, dims=2, input_size=64).eval()
    rec = load_state(model, ref.state_dict())
    assert rec["keymap"] == "torchvision_resnet" and rec["loaded"] == rec["total"]
    assert all(u.endswith("downsample.0.bias") for u in rec["unused"]) and len(rec["unused"]) == 3
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), ref(x), atol=1e-5)


def test_a_real_monai_basicunet_loads_its_encoder_and_lists_the_rest():
    monai_nets = pytest.importorskip("monai.networks.nets")
    ref = monai_nets.BasicUNet(spatial_dims=2, in_channels=1, out_channels=2, features=(32, 64, 128, 256, 320, 32))
    model = build_model("unet", in_channels=1, num_classes=2, dims=2, input_size=64)
    rec = load_state(model, ref.state_dict())
    assert rec["keymap"] == "monai_basicunet"
    enc = [k for k in model.state_dict() if k.startswith("enc.")]
    assert set(enc) <= set(rec["loaded_from"])
    # BasicUNet's up-convolutions halve the channels: those tensors are skipped, with both shapes
    skipped = {d["tensor"]: d for d in rec["skipped"]}
    assert skipped["up.0.weight"]["shape"] == [320, 256, 2, 2] and skipped["up.0.weight"]["source_shape"] == [320, 160, 2, 2]
    assert rec["loaded"] + len(rec["skipped"]) + len(rec["reinitialised"]) == rec["total"]


def test_nothing_fits_lists_every_key_map_tried(tmp_path):
    model = build_model("cnn_small", in_channels=1, num_classes=2, dims=2, input_size=28, width=4)
    torch.save({"conv1.weight": torch.zeros(3, 3), "layer1.0.conv1.weight": torch.zeros(2)}, tmp_path / "foreign.pt")
    with pytest.raises(ConfigError) as err:
        load_matching_weights(model, tmp_path / "foreign.pt")
    msg = str(err.value)
    assert "no tensor of" in msg and "foreign.pt" in msg
    for name in ("openmia names", *KEY_MAPS):
        assert re.search(rf"{name}: 0 of {len(model.state_dict())}", msg), name
    with pytest.raises(ConfigError, match="train.init_keymap: expected one of"):
        load_config(None, ["train.init_keymap=torchvison_resnet"])


def test_block_groups_run_from_the_input_to_the_head():
    groups = [g for g, _ in block_groups(build_model("resnet18", in_channels=1, num_classes=2, dims=2, width=4))]
    assert groups == ["stem", "stages.0", "stages.1", "stages.2", "stages.3", "fc"]
    groups = [g for g, _ in block_groups(build_model("unet_small", in_channels=1, num_classes=2, dims=2, input_size=32))]
    assert groups[0] == "enc.0" and groups[-1] == "head" and "dec.2" in groups
    assert [g for g, _ in block_groups(build_model("mlp", in_channels=1, num_classes=2, dims=2))] == ["net", "net.6"]
    assert [trainable_groups("gradual", e, 2, 6) for e in range(12)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]
    assert trainable_groups("probe", 9, 1, 6) == 1 and trainable_groups("none", 0, 1, 6) == 6


def test_gradual_unfreezing_opens_one_group_per_period():
    model = build_model("resnet18", in_channels=1, num_classes=2, dims=2, width=4).train()
    assert apply_freeze(model, "gradual", 0, 1) == ["fc"]
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {"fc.weight", "fc.bias"}
    assert not model.stages[3][1].bn2.training and model.fc.training  # frozen batch norm keeps its statistics
    assert apply_freeze(model, "gradual", 1, 1) == ["stages.3", "fc"]
    assert all(p.requires_grad for n, p in model.named_parameters() if n.startswith("stages.3."))
    assert not any(p.requires_grad for n, p in model.named_parameters() if n.startswith("stages.2."))


def _loop(tmp_path, *extra):
    cfg = load_config(None, ["data.dataset=synthetic/binary", "model.name=cnn_small", *FAST,
                             f"out_dir={tmp_path}", *extra])
    loop = Loop(cfg, progress=False).setup()
    loop.start(tmp_path / "run")
    return loop


def test_linear_probe_changes_only_the_head(small_data, tmp_path):
    loop = _loop(tmp_path, "train.freeze=probe")
    before = {k: v.clone() for k, v in loop.model.state_dict().items()}
    loop.fit()
    after = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)["model"]
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"head.1.weight", "head.1.bias"}  # batch-norm statistics of the frozen body unchanged too


def test_layer_decay_scales_each_groups_learning_rate(small_data, tmp_path):
    loop = _loop(tmp_path, "optim.layer_decay=0.5", "optim.lr=0.01")
    groups = loop.optimizer.param_groups
    names = [g["group"] for g in groups]
    assert names == ["features.0", "features.2", "features.4", "features.6", "head.1"]
    loop._set_lr(0.0, 0.0)
    assert [g["lr"] for g in groups] == pytest.approx([0.01 * 0.5 ** k for k in (4, 3, 2, 1, 0)])
    assert sum(len(g["params"]) for g in groups) == len(list(loop.model.parameters()))
    plain = _loop(tmp_path / "plain")
    assert len(plain.optimizer.param_groups) == 1 and "lr_scale" not in plain.optimizer.param_groups[0]


def test_loaded_skipped_and_reinitialised_tensors_go_into_the_provenance(small_data, tmp_path):
    src = build_model("cnn_small", in_channels=1, num_classes=3, dims=2, input_size=28, width=4)
    sd = dict(src.state_dict())
    sd.pop("features.0.1.running_var")  # absent: re-initialised
    torch.save(sd, tmp_path / "src.pt")
    cfg = load_config(None, ["data.dataset=synthetic/binary", "model.name=cnn_small", *FAST, f"out_dir={tmp_path}",
                             f"train.init_from={tmp_path / 'src.pt'}"])
    from openmia.engine.run_dir import train

    res = train(cfg, run_dir=tmp_path / "run", progress=False)
    rec = json.loads((res.run_dir / "provenance.json").read_text())["init_from"]
    assert rec["keymap"] == "none" and rec["reinitialised"] == ["features.0.1.running_var"]
    assert {d["tensor"] for d in rec["skipped"]} == {"head.1.weight", "head.1.bias"}
    assert rec["skipped"][0]["source_shape"][0] == 3 and rec["skipped"][0]["shape"][0] == 2
    assert rec["loaded"] == len(rec["loaded_from"]) == rec["total"] - 3
    assert rec == json.loads((res.run_dir / "init_from.json").read_text())
