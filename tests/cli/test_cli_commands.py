"""Each CLI subcommand, called through the real entry point."""

from __future__ import annotations

import json


from openmia.cli.main import main


def test_list_models_with_parameter_counts(capsys):
    assert main(["list", "models", "--task", "classification"]) == 0
    out = capsys.readouterr().out
    for name in ("mlp", "cnn_small", "alexnet", "vgg16_bn", "googlenet", "resnet50", "se_resnet18", "aa_resnet18", "dbn"):
        assert name in out
    assert "2D/3D" in out and "M" in out


def test_list_and_data_commands(capsys):
    assert main(["list", "datasets"]) == 0
    assert "synthetic/binary" in capsys.readouterr().out
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "vesselmnist3d" in out and "28/64" in out and "CC BY-NC 4.0" in out
    assert main(["data", "info", "chestmnist"]) == 0
    out = capsys.readouterr().out
    assert "multi-label" in out and "02c8a6516a18b556561a56cbdd36c4a8" in out and "Scientific Data" in out
    assert main(["data", "info", "retinamnis"]) == 2
    assert "Did you mean 'retinamnist'" in capsys.readouterr().err


def test_data_import_and_verify(shared_data, capsys, _isolated_home):
    src = shared_data / "medmnist" / "vesselmnist3d.npz"
    assert main(["data", "import", "vesselmnist3d", str(src)]) == 0
    assert "MD5 verified" in capsys.readouterr().out
    assert main(["data", "verify", "vesselmnist3d"]) == 0
    out = capsys.readouterr().out
    assert "matches the official checksum" in out and "vesselmnist3d: OK" in out
    assert main(["data", "verify", "retinamnist"]) == 1
    assert "PROBLEM" in capsys.readouterr().out


def test_train_then_runs_list_and_show(tmp_path, capsys):
    assert main(["-q", "train", "--dataset", "synthetic/binary", "--model", "mlp", "--epochs", "1", "--seed", "3",
                 "--out-dir", str(tmp_path), "--set", "eval.n_resamples=100", "--set", "train.threads=1"]) == 0
    out = capsys.readouterr().out
    assert "auc" in out and "run directory:" in out
    run_dir = out.split("run directory:")[1].strip()
    cfg = (tmp_path / run_dir.split("/")[-1] / "config.yaml").read_text()
    assert "seed: 3" in cfg
    assert main(["runs", "list"]) == 0
    assert "synthetic/binary" in capsys.readouterr().out
    assert main(["runs", "show", run_dir.split("/")[-1]]) == 0
    out = capsys.readouterr().out
    assert "provenance:" in out and "parameters" in out and "auc" in out


def test_quickstart_prints_metric_table(tmp_path, capsys):
    assert main(["-q", "quickstart", "--out-dir", str(tmp_path), "--set", "train.epochs=1", "--set", "eval.n_resamples=100"]) == 0
    out = capsys.readouterr().out
    for m in ("auc", "acc", "balanced_acc", "f1", "sensitivity", "specificity", "ece", "brier", "95% CI", "run directory"):
        assert m in out
    summary = json.loads(next(tmp_path.glob("*/eval/test/summary.json")).read_text())
    assert summary["n_cases"] == 800
