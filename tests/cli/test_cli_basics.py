from __future__ import annotations

import subprocess
import sys

from openmia.cli.main import main


def test_import_openmia_does_not_import_torch():
    code = "import sys, openmia, openmia.cli.main, openmia.config, openmia.models; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"



def test_loading_a_config_does_not_import_torch():
    # validating every field (e.g. segmentation.tta_scales, through the task's own section) stays
    # light: `openmia train --help`, config errors
    code = ("import sys; from openmia.config import load_config; "
            "load_config(None, ['task=segmentation', 'segmentation.tta_scales=[1.0, 1.25]', "
            "'segmentation.batch_dice=false']); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

def test_help_lists_every_subcommand(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for cmd in ("quickstart", "env", "list", "data", "train", "evaluate", "runs"):
        assert cmd in out


def test_env_prints_versions(capsys):
    assert main(["env"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "cpus" in out and "torch threads" in out


def test_runs_list_empty_and_unknown(capsys):
    assert main(["runs", "list"]) == 0
    assert "no runs recorded" in capsys.readouterr().out
    assert main(["runs", "show", "does-not-exist"]) == 2
    assert "no recorded run matches" in capsys.readouterr().err


def test_train_resume_on_non_run_dir_is_clear_error(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "is not an openmia run directory: config.yaml is missing" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nope")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_train_unknown_config_key_is_clear_error(capsys):
    assert main(["train", "--set", "train.epoch=1"]) == 2
    assert "Did you mean train.epochs?" in capsys.readouterr().err
