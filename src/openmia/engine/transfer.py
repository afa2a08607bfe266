"""``train.init_from``: start a run from weights that exist already, and decide which of them train.

Transfer learning (train on one set, fine-tune on another), progressive resizing (train at a
small resolution, continue at a larger one) and fine-tuning a self-supervised encoder
(``openmia pretrain``) all start from weights that exist already. The source is

- a run directory: a pre-training run's ``encoder.pt`` (``openmia pretrain``), else the kept
  weights ``checkpoints/best.pt`` of a training run;
- a ``.pt`` file: openmia's checkpoint ``{"model": state_dict, ...}`` or a bare state dict, also
  one written by another library (see the key maps below).

Every tensor whose (mapped) name and shape match is copied; the rest keep their fresh
initialisation. The record (``init_from.json`` and the provenance) lists the tensors loaded (with
their source names), skipped (same name, other shape: a head for another number of classes),
re-initialised (no tensor of that name in the source) and unused (only in the source), plus the
key map used and the SHA-256 of the file.

**Key maps** (``train.init_keymap``; ``auto`` tries openmia's own names and every map below and
keeps the one that loads the most tensors; ``none`` = openmia's names only). Each is a list of
regular-expression renames applied to the *source* names, in order:

================== ================================================================ =================================
map                source naming (the library's own ``state_dict()`` keys)          openmia model
================== ================================================================ =================================
torchvision_resnet ``conv1.weight``, ``bn1.*``, ``layer1.0.conv1.weight``,            ``resnet18/34/50`` (2D; and 3D
                   ``layer2.0.downsample.0/1.*``, ``fc.weight`` (torchvision ResNet;  with the same names)
                   MONAI's ``monai.networks.nets.ResNet`` uses the same names)
timm_resnet        timm's ``resnet*``: the torchvision names (timm kept them)         ``resnet18/34/50``
monai_basicunet    ``conv_0.conv_0.conv.weight``, ``conv_0.conv_0.adn.N.*``,         ``unet`` (the 5-level U-Net)
                   ``down_k.convs.conv_j.*``, ``upcat_k.upsample.deconv.*``,
                   ``upcat_k.convs.conv_j.*``, ``final_conv.*`` (MONAI BasicUNet)
================== ================================================================ =================================

MONAI BasicUNet's convolutions carry a bias that openmia's (followed by a norm) do not: those
biases are listed as unused; its up-convolutions halve the channels (openmia's do not), so with
MONAI's own shapes the decoder is skipped and the encoder loads. MONAI's residual-unit ``UNet``
class has another architecture (strided convolutions instead of pooling) and no map. SE blocks of
timm's ``seresnet`` are 1x1 convolutions (openmia: linear layers) and are not mapped.

**Freezing** (``train.freeze``) works on *block groups* (:func:`block_groups`): the head (the
module holding the model's last parameter), then from the top down each block of a container of
blocks (``stages.3``, ``enc.4``, ``features.6``, ``rbms.1``) and each other top-level module
(``stem``). ``none`` trains everything (full fine-tuning); ``probe`` trains the head only (a
linear probe on a classifier); ``gradual`` trains the head in the first ``train.unfreeze_every``
epochs and one more group every ``train.unfreeze_every`` epochs after (ULMFiT's gradual
unfreezing, Howard & Ruder, ACL 2018). Batch-norm layers whose parameters are all frozen are kept
in eval mode (their running statistics stay those of the source). ``optim.layer_decay`` < 1 gives
the group k below the head the learning rate ``lr * layer_decay**k`` (layer-wise learning-rate
decay, as in BEiT, Bao et al., ICLR 2022).
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Any

from openmia.errors import ConfigError

log = logging.getLogger(__name__)

_RESNET = (
    (r"^conv1\.", "stem.0."),
    (r"^bn1\.", "stem.1."),
    (r"^layer([1-4])\.", lambda m: f"stages.{int(m.group(1)) - 1}."),
    (r"\.downsample\.", ".shortcut."),
)
_BASICUNET = (
    (r"^conv_0\.conv_([01])\.", lambda m: f"enc.0.conv{int(m.group(1)) + 1}."),
    (r"^down_([1-4])\.convs\.conv_([01])\.", lambda m: f"enc.{m.group(1)}.conv{int(m.group(2)) + 1}."),
    (r"^upcat_([1-4])\.upsample\.deconv\.", lambda m: f"up.{4 - int(m.group(1))}."),
    (r"^upcat_([1-4])\.convs\.conv_([01])\.", lambda m: f"dec.{4 - int(m.group(1))}.conv{int(m.group(2)) + 1}."),
    (r"^final_conv\.", "head."),
    # a TwoConv's conv layer and norm: enc.0.conv1.conv.weight -> enc.0.conv1.weight, ...adn.N.* -> n1.*
    (r"\.conv([12])\.conv\.", lambda m: f".conv{m.group(1)}."),
    (r"\.conv([12])\.adn\.N\.", lambda m: f".n{m.group(1)}."),
)
# name -> (what it reads, its renames of source names)
KEY_MAPS: dict[str, tuple[str, tuple]] = {
    "torchvision_resnet": ("torchvision / MONAI ResNet names (conv1, bn1, layer1-4, downsample, fc)", _RESNET),
    "timm_resnet": ("timm ResNet names (the torchvision ones)", _RESNET),
    "monai_basicunet": ("MONAI BasicUNet names (conv_0, down_k, upcat_k, final_conv)", _BASICUNET),
}


def map_key(name: str, keymap: str) -> str:
    """``name`` (a source tensor name) renamed by the key map ``keymap`` (``none``: unchanged)."""
    if keymap == "none":
        return name
    for pattern, repl in KEY_MAPS[keymap][1]:
        name = re.sub(pattern, repl, name)
    return name


def resolve_source(source: str | Path) -> Path:
    """The weights file ``source`` names: a pre-training run's ``encoder.pt``, a run directory's
    ``checkpoints/best.pt``, or a file."""
    p = Path(source).expanduser()
    if p.is_dir():
        if (p / "encoder.pt").is_file():
            return p / "encoder.pt"
        ck = p / "checkpoints" / "best.pt"
        if not ck.is_file():
            raise ConfigError(f"train.init_from={str(source)!r}: {p} has no checkpoints/best.pt "
                              "(expected a finished openmia run directory, a pre-training run with encoder.pt, "
                              "or a .pt checkpoint file)")
        return ck
    if not p.is_file():
        raise ConfigError(f"train.init_from={str(source)!r}: no such run directory or checkpoint file")
    return p


def _state_dict(ck: Any, path: Path) -> dict[str, Any]:
    """The weights in a loaded checkpoint: openmia's ``{"model": state_dict, ...}`` or a bare state dict."""
    import torch

    sd = ck.get("model", ck) if isinstance(ck, dict) else None
    if not isinstance(sd, dict) or not sd or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise ConfigError(f"train.init_from: {path} holds no model weights (expected openmia's checkpoint with a "
                          "'model' state dict, or a state dict of tensors)")
    return sd


def plan_loading(own: dict[str, Any], src: dict[str, Any], keymap: str) -> dict[str, Any]:
    """Which source tensor goes where under ``keymap``: ``{"loaded": {own: src}, "skipped":
    [{tensor, source, shape, source_shape}], "reinitialised": [own], "unused": [src]}``.
    ``own`` and ``src`` map names to tensors (or anything with ``.shape``)."""
    renamed: dict[str, str] = {}
    for k in src:
        renamed.setdefault(map_key(k, keymap), k)  # the first source name wins a collision
    loaded, skipped, reinit = {}, [], []
    for k, v in own.items():
        s = renamed.get(k)
        if s is None:
            reinit.append(k)
        elif tuple(src[s].shape) == tuple(v.shape):
            loaded[k] = s
        else:
            skipped.append({"tensor": k, "source": s, "shape": list(v.shape), "source_shape": list(src[s].shape)})
    used = set(loaded.values())
    return {"loaded": loaded, "skipped": skipped, "reinitialised": reinit, "unused": [k for k in src if k not in used]}


def choose_keymap(own: dict[str, Any], src: dict[str, Any], keymap: str = "auto", *, where: str = "the source"
                  ) -> tuple[str, dict[str, Any], dict[str, int]]:
    """``(map name, plan, tried)``: with ``auto`` the map (openmia's names first) that loads the
    most tensors; ``tried`` is tensors loaded per map. Raises ConfigError, listing every map
    tried, when no tensor fits."""
    names = ["none", *KEY_MAPS] if keymap == "auto" else [keymap]
    if keymap not in ("auto", "none") and keymap not in KEY_MAPS:
        import difflib

        close = difflib.get_close_matches(str(keymap), ["auto", "none", *KEY_MAPS], n=1)
        raise ConfigError(f"train.init_keymap: expected one of auto, none, {', '.join(KEY_MAPS)}, found {keymap!r}"
                          + (f"; did you mean {close[0]!r}?" if close else ""))
    plans = {n: plan_loading(own, src, n) for n in names}
    tried = {n: len(p["loaded"]) for n, p in plans.items()}
    best = max(names, key=lambda n: tried[n])  # max keeps the first of equals: openmia's names win ties
    if tried[best] == 0:
        listing = "; ".join(f"{'openmia names' if n == 'none' else n}: 0 of {len(own)}"
                            f" ({sum(1 for s in plans[n]['skipped'])} same name, other shape)" for n in names)
        raise ConfigError(f"train.init_from: no tensor of {where} fits this model (no name with the same shape); "
                          f"tried {listing}. Source names start {', '.join(list(src)[:4])}; the model's start "
                          f"{', '.join(list(own)[:4])}. Is it a run of another architecture? (key maps: "
                          f"{', '.join(KEY_MAPS)})")
    return best, plans[best], tried


def load_state(model, src: dict[str, Any], keymap: str = "auto", *, where: str = "the source") -> dict[str, Any]:
    """Copy the tensors of the state dict ``src`` that fit ``model`` (see :func:`choose_keymap`);
    returns the record without source/SHA-256 (see :func:`load_matching_weights`)."""
    import torch

    own = model.state_dict()
    name, plan, tried = choose_keymap(own, src, keymap, where=where)
    with torch.no_grad():
        for k, s in plan["loaded"].items():
            own[k].copy_(src[s].to(own[k].dtype))
    fresh = [d["tensor"] for d in plan["skipped"]] + plan["reinitialised"]
    fresh = [k for k in own if k in set(fresh)]  # the model's order
    if fresh:
        log.warning("train.init_from: %d of %d tensors loaded from %s (key map %s); kept fresh: %s", len(plan["loaded"]),
                    len(own), where, name, ", ".join(fresh[:8]) + (" ..." if len(fresh) > 8 else ""))
    return {"keymap": name, "keymaps_tried": tried, "loaded": len(plan["loaded"]), "total": len(own), "fresh": fresh,
            "loaded_from": plan["loaded"], "skipped": plan["skipped"], "reinitialised": plan["reinitialised"],
            "unused": plan["unused"]}


def load_matching_weights(model, source: str | Path, keymap: str = "auto") -> dict[str, Any]:
    """Copy every tensor of ``source``'s weights whose (mapped) name and shape match ``model``.

    Returns the record kept in ``init_from.json`` and the provenance: ``source``, ``sha256``,
    ``keymap`` (and ``keymaps_tried``: tensors each would load), ``loaded`` (count) with
    ``loaded_from`` ({model name: source name}), ``total``, ``fresh`` (kept at their
    initialisation: ``skipped`` for another shape, with both shapes, plus ``reinitialised``,
    absent from the source) and ``unused`` (only in the source).
    Raises ConfigError when the file cannot be read or nothing fits."""
    import torch

    path = resolve_source(source).resolve()
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn, foreign or pickled-object file
        raise ConfigError(f"train.init_from: cannot load {path} ({type(exc).__name__}: {exc})") from None
    src = _state_dict(ck, path)
    rec = load_state(model, src, keymap, where=str(path))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    out = {"source": str(path), "sha256": digest, **rec}
    if isinstance(ck, dict) and isinstance(ck.get("pretrain"), dict):  # an encoder of `openmia pretrain`
        out["pretrain"] = ck["pretrain"]
    return out


# ----------------------------------------------------------------------------- freezing and LLRD


def block_groups(model) -> list[tuple[str, list[str]]]:
    """The model's parameters in block groups, from the input to the head (the last group).

    The head is the module holding the last parameter (``fc``, ``head``, ``net.6``); the others
    group by top-level module, splitting a ``ModuleList`` or a ``Sequential`` of blocks (children
    with submodules) into its blocks. Returns ``[(group name, [parameter names])]``."""
    from torch import nn

    names = [n for n, p in model.named_parameters()]
    if not names:
        raise ConfigError(f"{type(model).__name__} has no parameters to train")
    head = names[-1].rsplit(".", 1)[0] if "." in names[-1] else names[-1]
    groups: dict[str, list[str]] = {}
    for n in names:
        if n == head or n.startswith(head + "."):
            key = head
        else:
            parts = n.split(".")
            key = parts[0]
            if len(parts) > 2:
                top = model.get_submodule(parts[0])
                child = top.get_submodule(parts[1]) if parts[1] in dict(top.named_children()) else None
                if isinstance(top, nn.ModuleList) or (isinstance(top, nn.Sequential) and child is not None
                                                      and any(True for _ in child.children())):
                    key = f"{parts[0]}.{parts[1]}"
            elif len(parts) == 2 and isinstance(model.get_submodule(parts[0]), nn.ModuleList):
                key = parts[0]
        groups.setdefault(key, []).append(n)
    groups[head] = groups.pop(head)  # last
    return list(groups.items())


def param_groups(model, layer_decay: float) -> Any:
    """The optimiser's parameter groups: ``model.parameters()`` unchanged when ``layer_decay`` is 1,
    else one group per block group with ``lr_scale = layer_decay**k`` (k = groups below the head)."""
    if layer_decay >= 1:
        return model.parameters()
    params = dict(model.named_parameters())
    groups = block_groups(model)
    top = len(groups) - 1
    return [{"params": [params[n] for n in names], "lr_scale": float(layer_decay ** (top - i)), "group": g}
            for i, (g, names) in enumerate(groups)]


def trainable_groups(schedule: str, epoch: int, every: int, n_groups: int) -> int:
    """How many block groups (from the head down) train in epoch ``epoch`` (0-based)."""
    if schedule == "none":
        return n_groups
    if schedule == "probe":
        return 1
    if schedule == "gradual":
        return min(n_groups, 1 + epoch // every)
    raise ConfigError(f"train.freeze: expected none, probe or gradual, found {schedule!r}")


def apply_freeze(model, schedule: str, epoch: int, every: int = 1) -> list[str]:
    """Set ``requires_grad`` for epoch ``epoch`` of the schedule and put batch-norm layers whose
    parameters are all frozen in eval mode (call after ``model.train()``). Returns the names of
    the groups that train."""
    from torch import nn

    groups = block_groups(model)
    n = trainable_groups(schedule, epoch, every, len(groups))
    train_names = {p for _, names in groups[len(groups) - n:] for p in names}
    for name, p in model.named_parameters():
        p.requires_grad_(name in train_names)
    if schedule != "none":
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                ps = list(m.parameters(recurse=False))
                if ps and not any(p.requires_grad for p in ps):
                    m.eval()
    return [g for g, _ in groups[len(groups) - n:]]
