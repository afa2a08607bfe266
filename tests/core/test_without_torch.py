"""The evaluator, ``compare`` and the data tools work without PyTorch (``pip install openmia``);
commands that need it say how to install it. A subprocess blocks every ``import torch`` (as if
torch were not installed) and runs the commands."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

BLOCK = textwrap.dedent("""
    import sys
    class NoTorch:
        def find_spec(self, name, path=None, target=None):
            if name == "torch" or name.startswith("torch."):
                raise ModuleNotFoundError("No module named 'torch'", name="torch")
    sys.meta_path.insert(0, NoTorch())
    from openmia.cli.main import main
    rc = main(sys.argv[1:])
    assert "torch" not in sys.modules
    sys.exit(rc)
""")


def _openmia(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK, *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_evaluate_and_compare_run_without_torch(tmp_path):
    rng = __import__("numpy").random.default_rng(0)
    y = rng.integers(0, 2, 60)
    (tmp_path / "truth.csv").write_text("case_id,label\n" + "".join(f"c{i},{v}\n" for i, v in enumerate(y)))
    for name, noise in (("a", 0.3), ("b", 0.6)):
        s = (y + rng.normal(0, noise, 60)).clip(0, 1)
        (tmp_path / f"{name}.csv").write_text("case_id,score\n" + "".join(f"c{i},{v:.4f}\n" for i, v in enumerate(s)))
    r = _openmia("evaluate", "--task", "classification", "--pred", str(tmp_path / "a.csv"), "--truth",
                 str(tmp_path / "truth.csv"), "--out", str(tmp_path / "eval"), "--resamples", "200")
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((tmp_path / "eval" / "summary.json").read_text())["n_cases"] == 60
    r = _openmia("compare", "--task", "classification", "--truth", str(tmp_path / "truth.csv"), "--pred",
                 f"a={tmp_path / 'a.csv'}", "--pred", f"b={tmp_path / 'b.csv'}", "--out", str(tmp_path / "cmp"),
                 "--resamples", "200", "--rank-resamples", "50")
    assert r.returncode == 0, r.stderr[-2000:]
    for args in (["--help"], ["list", "datasets"], ["data", "info", "synthetic/binary"]):
        r = _openmia(*args)
        assert r.returncode == 0, (args, r.stderr[-2000:])


def test_training_without_torch_says_how_to_install_it(tmp_path):
    r = _openmia("train", "--epochs", "1", "--out-dir", str(tmp_path))
    assert r.returncode == 2 and "needs PyTorch" in r.stderr and "openmia[train]" in r.stderr
    assert "Traceback" not in r.stderr and not any(tmp_path.iterdir())


@__import__("pytest").mark.slow
def test_pip_install_openmia_gives_a_working_evaluator_without_torch(tmp_path):
    """The real thing, in a fresh virtual environment: ``pip install .`` (no extras) brings no torch."""
    import pytest

    pytest.importorskip("venv")
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", str(root)], capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run([str(py), "-c", "import importlib.util as u; print(u.find_spec('torch') is None)"],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == "True"
    (tmp_path / "t.csv").write_text("case_id,label\n" + "".join(f"c{i},{i % 2}\n" for i in range(20)))
    (tmp_path / "p.csv").write_text("case_id,score\n" + "".join(f"c{i},{(i % 2) * 0.6 + 0.2:.2f}\n" for i in range(20)))
    r = subprocess.run([str(venv / "bin" / "openmia"), "evaluate", "--task", "classification", "--pred", str(tmp_path / "p.csv"),
                        "--truth", str(tmp_path / "t.csv"), "--out", str(tmp_path / "out"), "--resamples", "100"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run([str(venv / "bin" / "openmia"), "train", "--epochs", "1"], capture_output=True, text=True, timeout=300,
                       cwd=tmp_path)
    assert r.returncode == 2 and "openmia[train]" in r.stderr
