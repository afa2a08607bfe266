"""Provenance of a result (DESIGN §4.6): data checksums and split hashes, resolved config and its
hash, seeds, versions, git commit, hardware, wall time, peak memory and parameter count."""

from __future__ import annotations

import hashlib
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np


def split_hash(case_ids: list[str], labels: np.ndarray) -> str:
    """sha256 of the ordered case ids and labels of a split (same split -> same hash)."""
    h = hashlib.sha256()
    for c in case_ids:
        h.update(c.encode() + b"\0")
    labels = np.ascontiguousarray(labels)
    # integer labels hash as int64 (as always); real-valued targets keep their values
    h.update(labels.astype(np.float64 if np.issubdtype(labels.dtype, np.floating) else np.int64).tobytes())
    return h.hexdigest()


def array_checksum(images: np.ndarray) -> str:
    """sha256 of an image array's bytes (used where no file checksum exists, e.g. synthetic sets)."""
    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()


def git_commit(path: Path | None = None) -> str | None:
    """The git commit of the openmia source tree (None when not in a git checkout)."""
    where = path or Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        if out.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def hardware() -> dict[str, Any]:
    """CPU model, logical/usable CPUs and total RAM."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "usable_cpus": usable, "ram_bytes": mem,
            "machine": platform.machine(), "os": platform.platform()}


def gpu(device) -> dict[str, Any]:
    """The CUDA device a run used: model, compute capability, memory and the CUDA/cuDNN builds."""
    import torch

    props = torch.cuda.get_device_properties(device)
    return {"name": props.name, "capability": f"{props.major}.{props.minor}", "memory_bytes": props.total_memory,
            "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version()}


def versions() -> dict[str, str | None]:
    """Versions of openmia, Python and the libraries results depend on."""
    from importlib import metadata

    out: dict[str, str | None] = {"openmia": None, "python": sys.version.split()[0]}
    for pkg in ("openmia", "torch", "numpy", "scipy", "scikit-learn"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def peak_rss_bytes() -> int:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(r * (1 if sys.platform == "darwin" else 1024))


def collect_provenance(cfg, splits: Mapping[str, Any], model, *, threads: int | None = None,
                       init_from: dict[str, Any] | None = None) -> dict[str, Any]:
    """Provenance record for a training run (see module docstring); ``init_from`` is the record of
    the weights it started from (``train.init_from``), None for a fresh initialisation."""
    import torch

    spec = next(iter(splits.values())).spec
    data: dict[str, Any] = {"dataset": spec.name, "source": spec.source, "file_md5": spec.md5, "splits": {}}
    record = getattr(next(iter(splits.values())), "split_record", None)
    if callable(record):  # user data: the split rule and a checksum over every data file
        rec = record()
        data.update({"split_rule": rec.get("rule"), "files_sha256": rec.get("files_sha256")})
    for name, s in splits.items():
        entry = {"n": len(s.case_ids), "split_hash": split_hash(s.case_ids, s.labels)}
        if not spec.md5 and not data.get("files_sha256"):  # no file checksum (synthetic): checksum the arrays themselves
            entry["images_sha256"] = array_checksum(s.images)
        data["splits"][name] = entry
    return {
        "schema": "openmia.provenance/1",
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "data": data,
        "config": cfg.to_dict(),
        "config_hash": cfg.hash(),
        "seeds": {"train": cfg.train.seed, "eval_bootstrap": cfg.eval.seed},
        "deterministic": cfg.train.deterministic,
        "versions": versions(),
        "git_commit": git_commit(),
        "hardware": hardware(),
        "torch_threads": threads if threads is not None else torch.get_num_threads(),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "init_from": init_from,
    }


def finish_provenance(prov: dict[str, Any], *, train_seconds: float) -> dict[str, Any]:
    """Add wall time and peak memory at the end of a run."""
    out = dict(prov)
    out["train_seconds"] = round(train_seconds, 3)
    out["peak_rss_bytes"] = peak_rss_bytes()
    return out
