"""benchmarks/precision_speed.py runs at toy sizes and times the trainer's own bf16 forward."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def test_precision_speed_quick_run_writes_both_timings(tmp_path):
    spec = importlib.util.spec_from_file_location("bench_precision_speed", BENCH / "precision_speed.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--quick", "--rounds", "1", "--steps", "1", "--out", str(tmp_path)]) == 0
    res = json.loads((tmp_path / "precision_speed.json").read_text())
    assert len(res["records"]) == len(mod.CASES) and res["bf16_units"]
    for r in res["records"]:
        assert r["fp32_s_per_step"] > 0 and r["bf16_s_per_step"] > 0
        assert abs(r["speedup"] - r["fp32_s_per_step"] / r["bf16_s_per_step"]) < 1e-12
    assert "speed-up" in (tmp_path / "precision_speed.md").read_text()
    # the timed forward really is the training loop's: bf16 outputs come back as fp32
    import torch

    from openmia.models import build_model

    m = build_model("resunet", in_channels=1, num_classes=2, dims=2, channels=[4, 8])
    assert mod.forward(m, torch.rand(1, 1, 16, 16), "bf16", torch.device("cpu")).dtype == torch.float32
