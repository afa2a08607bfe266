"""The Task-per-family engine reproduces the pre-redesign engine exactly.

``fixtures/before_redesign_metrics*.json`` hold the test metrics of short deterministic runs (one
per task family, fixed seed, fp32, one thread) made with the engine as it stood before the
redesign (commit 2eb43d1, by ``fixtures/capture_before.py``, run on that commit's tree). The same
runs on today's engine must give the same numbers: identical batches, augmentation draws, model
initialisation, selection and evaluation. The fixture's overrides are in the earlier flat config
layout, so this also exercises the migration of old configs (:func:`openmia.config.migrate_legacy`).

Bit-identical is a property of one kind of machine: the same torch wheel computes the last bits
differently on the two kinds of 2-core Xeon this project has run on (the first training loss
differs from the 4th digit, and a 2-epoch detector ends elsewhere). So there is one capture per
machine kind — ``before_redesign_metrics.json`` (the machines of November 2026) and
``..._b.json`` (made 2026-12-04 on the other kind, where it also equals today's engine) — and each
run must equal one of them exactly, every metric and every epoch's loss. A regression matches
neither; a machine of a third kind fails too, until its capture is added (run
``capture_before.py`` with ``PYTHONPATH`` set to a checkout of 2eb43d1's ``src``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openmia.config import RunConfig, apply_override, migrate_legacy
from openmia.engine.run_dir import train

CAPTURES = [json.loads(p.read_text()) for p in sorted((Path(__file__).parent / "fixtures").glob("before_redesign_metrics*.json"))]
FIXTURE = CAPTURES[0]  # the run names and overrides (the same in every capture)
COMMON = ["train.threads=1", "train.deterministic=true", "train.seed=0", "eval.n_resamples=200"]


def _differences(before: dict, result: dict, losses: list[float]) -> list[str]:
    """How a run differs from one capture (empty: equal). Later evaluators may report more metrics
    (detection: ap75, ar, ap by size); the earlier ones are unchanged up to summation order: the
    one-pass bootstrap (issue 22 §4) sums Brier, NLL and AP in another order, which moves the last
    bit (the issue's "point estimates unchanged to 1e-12")."""
    got = {k: v["value"] for k, v in result["test"].items()}
    out = [f"metric {k} missing" for k in before["test"] if k not in got]
    out += [f"{k}: {got[k]!r} != {v!r}" for k, v in before["test"].items()
            if k in got and got[k] != pytest.approx(v, rel=1e-12, abs=1e-12, nan_ok=True)]
    if result["best_epoch"] != before["best_epoch"]:
        out.append(f"best_epoch {result['best_epoch']} != {before['best_epoch']}")
    if losses != [r["train_loss"] for r in before["metrics"]]:
        out.append(f"train losses {losses} != {[r['train_loss'] for r in before['metrics']]}")
    return out


@pytest.mark.parametrize("name", sorted(FIXTURE))
def test_same_test_metrics_as_before_the_redesign(name, tmp_path):
    before = FIXTURE[name]
    raw: dict = {}
    for item in [*COMMON, *before["overrides"], f"out_dir={tmp_path}"]:
        apply_override(raw, item)
    cfg = RunConfig.from_dict(migrate_legacy(raw)[0])
    res = train(cfg, run_dir=tmp_path / "run", progress=False)
    result = json.loads((res.run_dir / "result.json").read_text())
    losses = [json.loads(x)["train_loss"] for x in (res.run_dir / "metrics.jsonl").read_text().splitlines()]
    diffs = [_differences(capture[name], result, losses) for capture in CAPTURES]
    assert any(not d for d in diffs), "equal to no capture: " + " | ".join(f"capture {i}: {'; '.join(d[:4])}"
                                                                           for i, d in enumerate(diffs))
