"""Devices: ``train.device`` (``auto | cpu | cuda | cuda:N | mps``), autocast per device type,
checkpoint ``map_location``, DataLoader-style settings and the default thread count.

Everything here is device-generic; the CUDA paths are exercised on CPU-only machines by tests that
replace ``torch.cuda.is_available`` / ``device_count`` at this module's boundary (see
docs/training.md, "Devices").
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

from openmia.errors import ConfigError

log = logging.getLogger(__name__)


def available_devices() -> list[str]:
    """The devices torch can use here, e.g. ``["cpu", "cuda:0", "cuda:1"]``."""
    import torch

    out = ["cpu"]
    if torch.cuda.is_available():
        out += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        out.append("mps")
    return out


def resolve_device(name: str = "auto"):
    """A ``torch.device`` for ``train.device``: ``auto`` = the first CUDA device if there is one,
    else the CPU. Asking for a device that is not there is a ConfigError naming what is."""
    import torch

    avail = available_devices()
    if name == "auto":
        return torch.device("cuda:0" if any(d.startswith("cuda") for d in avail) else "cpu")
    want = "cuda:0" if name == "cuda" else name
    if want not in avail:
        raise ConfigError(f"train.device={name!r}: no such device here; available: {', '.join(avail)} "
                          "(set train.device=auto or cpu)")
    return torch.device(want)


def check_precision(precision: str, device) -> None:
    """Raise ConfigError for a precision the device cannot train in."""
    if precision == "fp16" and device.type != "cuda":
        raise ConfigError(f"train.precision=fp16 needs a CUDA device (it uses a gradient scaler); this run is on "
                          f"{device}; use bf16 or fp32")


def autocast(precision: str, device) -> contextlib.AbstractContextManager:
    """The autocast context of ``train.precision`` on ``device`` (a null context for fp32)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    import torch

    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def grad_scaler(precision: str, device) -> Any | None:
    """A gradient scaler for fp16 on CUDA (fp16 gradients underflow without one); None otherwise."""
    if precision != "fp16":
        return None
    import torch

    return torch.amp.GradScaler(device.type)


def map_location(device) -> Any:
    """What ``torch.load`` needs to put a checkpoint written on any device onto ``device``."""
    return device


def to_device(x, device):
    """``x`` (a tensor, or lists/tuples/dicts of tensors) on ``device``; a no-op on the CPU."""
    import torch

    if isinstance(x, torch.Tensor):
        if x.device == device:
            return x
        return x.to(device, non_blocking=device.type == "cuda")
    if isinstance(x, (list, tuple)):
        return type(x)(to_device(v, device) for v in x)
    if isinstance(x, dict):
        return {k: to_device(v, device) for k, v in x.items()}
    return x


def to_fp32(out):
    """``out`` with every floating tensor in it cast to fp32 (lists, tuples and dicts are walked)."""
    import torch

    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, (list, tuple)):
        return type(out)(to_fp32(o) for o in out)
    if isinstance(out, dict):
        return {k: to_fp32(v) for k, v in out.items()}
    return out


def available_cpus() -> int:
    """CPUs this process may run on: the affinity mask, capped by a cgroup CPU quota if any."""
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_quota()
    return max(1, min(n, quota) if quota else n)


def _cgroup_quota() -> int | None:
    """``ceil(quota / period)`` of cgroup v2 ``cpu.max`` (or v1 cfs files); None when unlimited."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:
            q, p = f.read().split()[:2]
        if q != "max":
            return max(1, -(-int(q) // int(p)))
        return None
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f:
            q = int(f.read())
        with open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as f:
            p = int(f.read())
        return max(1, -(-q // p)) if q > 0 else None
    except (OSError, ValueError):
        return None


def default_threads() -> int:
    """The default ``train.threads``: the CPUs available to this process minus those already busy
    (the 1-minute load average, rounded down), at least 1. On a shared machine, intra-op threads
    that wait for a busy core slow every step down (3-5x measured with one of two cores busy)."""
    n = available_cpus()
    try:
        busy = int(os.getloadavg()[0])
    except (OSError, AttributeError):
        busy = 0
    return max(1, min(n, n - busy))


def set_threads(n: int | None) -> int:
    """Set torch's intra-op threads to ``n`` (None = :func:`default_threads`); returns the count."""
    import torch

    torch.set_num_threads(max(1, n if n is not None else default_threads()))
    return torch.get_num_threads()


def bf16_units() -> str:
    """The CPU's bfloat16 matrix units as torch sees them (``AMX``, ``AVX-512 BF16``, ``none``);
    torch's probes are private, so a torch without them gives ``unknown``."""
    import torch

    found = []
    for name, probe in (("AMX", "_is_amx_tile_supported"), ("AVX-512 BF16", "_is_avx512_bf16_supported")):
        try:
            if getattr(torch.cpu, probe)():
                found.append(name)
        except (AttributeError, RuntimeError):  # a torch without the probe
            return "unknown"
    return ", ".join(found) or "none"
