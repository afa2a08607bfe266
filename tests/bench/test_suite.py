"""Benchmark suites (openmia.bench.suite): expansion into cells, cell ids, and the bad-input rules
of issue 25 (each a test). Nothing here trains."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest

from openmia.bench.suite import cell_id, load_suite
from openmia.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SUITES = ROOT / "benchmarks" / "suites"


def _suite(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return p


BASIC = """
name: t
base: {train: {epochs: 1}}
datasets: [synthetic/binary, synthetic/multiclass]
models:
  cnn: {set: {model.name: cnn_small, model.kwargs: {width: 8}}}
  mlp: {set: {model.name: mlp}}
seeds: [0, 1]
"""


def test_expansion_and_ids(tmp_path):
    s = load_suite(_suite(tmp_path, BASIC), out_dir=tmp_path / "out")
    assert len(s.cells) == 2 * 2 * 2
    assert [(c.dataset, c.model, c.seed) for c in s.cells[:3]] == [
        ("synthetic/binary", "cnn", 0), ("synthetic/binary", "cnn", 1), ("synthetic/binary", "mlp", 0)]
    assert len({c.id for c in s.cells}) == len(s.cells)
    c = s.cells[0]
    assert c.task == "classification" and c.config["train"]["epochs"] == 1 and c.config["model"]["kwargs"] == {"width": 8}
    assert s.run_dir(c).parent == (tmp_path / "out" / "cells").resolve() and c.id in s.run_dir(c).name
    # the id is the config's: stable across loads, blind to where/how fast, sensitive to what is trained
    again = load_suite(_suite(tmp_path, BASIC), out_dir=tmp_path / "elsewhere", overrides=["train.threads=3"],
                       data_root=tmp_path)
    assert [x.id for x in again.cells] == [x.id for x in s.cells]
    changed = load_suite(_suite(tmp_path, BASIC), overrides=["train.epochs=2"])
    assert not {x.id for x in changed.cells} & {x.id for x in s.cells}
    det = load_suite(_suite(tmp_path, BASIC), deterministic=True)
    assert all(x.config["train"]["deterministic"] for x in det.cells) and det.cells[0].id != c.id
    # the hash is RunConfig.to_dict's canonical JSON minus the where-keys
    assert cell_id(c.config) == c.id
    assert cell_id({**c.config, "out_dir": "x", "name": "y"}) == c.id


def test_task_follows_the_data_set_and_recipes_resolve(tmp_path):
    (tmp_path / "r.yaml").write_text("model: {name: unet_small}\ntrain: {epochs: 1}\n")
    s = load_suite(_suite(tmp_path, "datasets: [synthetic/seg2d]\nmodels: {u: {recipe: {'synthetic/*': r.yaml}}}\n"))
    assert s.cells[0].task == "segmentation" and s.cells[0].config["model"]["name"] == "unet_small"


@pytest.mark.parametrize("name", ["quick", "medmnist", "segmentation", "detection"])
def test_shipped_suites_load(name, tmp_path):
    s = load_suite(SUITES / f"{name}.yaml", data_root=tmp_path)
    assert s.cells and len({c.id for c in s.cells}) == len(s.cells)


def test_quick_suite_shape():
    s = load_suite(SUITES / "quick.yaml")
    assert len(s.cells) == 18 and {c.task for c in s.cells} == {"classification"}


def test_unknown_dataset_names_the_cell_and_close_matches(tmp_path):
    with pytest.raises(ConfigError, match=r"data set 'synthetic/binry'.*Did you mean 'synthetic/binary'"):
        load_suite(_suite(tmp_path, BASIC.replace("synthetic/binary,", "synthetic/binry,")))


def test_unknown_model_names_the_cell_and_close_matches(tmp_path):
    with pytest.raises(ConfigError, match=r"cell synthetic/binary x cnn x seed 0: model.name: unknown model 'cnn_smal'\. "
                                          r"Did you mean 'cnn_small'"):
        load_suite(_suite(tmp_path, BASIC.replace("model.name: cnn_small", "model.name: cnn_smal")))


def test_unknown_config_key_names_the_cell_and_key(tmp_path):
    with pytest.raises(ConfigError, match=r"cell synthetic/binary x cnn x seed 0: unknown config key 'train.epochz'\. "
                                          r"Did you mean train.epochs"):
        load_suite(_suite(tmp_path, BASIC.replace("epochs: 1", "epochz: 1")))


def test_unknown_suite_key(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'sedes'\. Did you mean 'seeds'"):
        load_suite(_suite(tmp_path, BASIC.replace("seeds:", "sedes:")))


def test_duplicate_cell(tmp_path):
    text = BASIC.replace("mlp: {set: {model.name: mlp}}", "mlp: {set: {model.name: mlp}}\n  mlp_again: {set: {model.name: mlp}}")
    with pytest.raises(ConfigError, match=r"duplicate cell: synthetic/binary x mlp_again x seed 0 has the same resolved "
                                          r"config .* as synthetic/binary x mlp x seed 0"):
        load_suite(_suite(tmp_path, text))


@pytest.mark.parametrize("budget, shown", [("0", "0"), ("-1", "-1"), ("'ten'", "'ten'")])
def test_budget_must_be_positive(tmp_path, budget, shown):
    with pytest.raises(ConfigError, match=rf"budgets: each budget is train.max_minutes > 0 .*, found {shown}$"):
        load_suite(_suite(tmp_path, BASIC + f"budgets: [5, {budget}]\n"))


def test_budgets_multiply_cells(tmp_path):
    s = load_suite(_suite(tmp_path, BASIC + "budgets: [0.5, 2]\n"))
    assert len(s.cells) == 16 and {c.config["train"]["max_minutes"] for c in s.cells} == {0.5, 2.0}


def test_ray_missing_is_a_clear_error(tmp_path, monkeypatch):
    from openmia.bench.runner import run_suite

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    s = load_suite(_suite(tmp_path, BASIC), out_dir=tmp_path / "o")
    with pytest.raises(ConfigError, match=r"--executor ray needs Ray, which is not installed; install it with pip install "
                                          r"'openmia\[ray\]'"):
        run_suite(s, executor="ray")
    assert not (tmp_path / "o").exists()  # refused before anything was written


def test_ray_address_that_does_not_answer(tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'openmia[ray]')")
    from openmia.bench.runner import run_suite

    with socket.socket() as sock:  # a port with nobody listening: bind, then close
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = load_suite(_suite(tmp_path, BASIC), out_dir=tmp_path / "o")
    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=rf"--address '127.0.0.1:{port}': no Ray cluster answered within 2 s"):
        run_suite(s, executor="ray", address=f"127.0.0.1:{port}", connect_timeout=2)
    assert time.monotonic() - t0 < 5
    with pytest.raises(ConfigError, match=r"expected HOST:PORT"):
        run_suite(s, executor="ray", address="nonsense")


@pytest.mark.slow  # behind a proxy that accepts every connection, Ray's own check takes ~20 s to give up
def test_ray_address_that_drops_packets_or_is_not_ray(tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'openmia[ray]')")
    from openmia.bench.runner import run_suite

    s = load_suite(_suite(tmp_path, BASIC), out_dir=tmp_path / "o")
    # an address that drops packets (the wait is bounded by the timeout) or, behind a proxy that
    # accepts any connection, answers but is not Ray (Ray's own connection check fails)
    t1 = time.monotonic()
    with pytest.raises(ConfigError, match=r"no Ray cluster answered within 1 s|Ray could not start at 10.255.255.1:6379: "
                                          r"ConnectionError"):
        run_suite(s, executor="ray", address="10.255.255.1:6379", connect_timeout=1)
    assert time.monotonic() - t1 < 60


def test_plan_says_what_and_why(tmp_path):
    """plan() on hand-made states (no training): finished, interrupted, deleted by hand, changed,
    failed, new, and running in a live process."""
    from openmia.bench.runner import plan
    from openmia.bench.suite_store import SuiteStore

    s = load_suite(_suite(tmp_path, BASIC), out_dir=tmp_path / "o")
    store = SuiteStore(s.store_path)
    store.register(s.name, s.cells, {c.id: s.run_dir(c) for c in s.cells}, {c.id: s.log_path(c) for c in s.cells})
    done, interrupted, deleted, failed, running = s.cells[:5]
    for c in (done, interrupted):
        s.run_dir(c).mkdir(parents=True)
        (s.run_dir(c) / "config.yaml").write_text("task: classification\n")
    (s.run_dir(done) / "result.json").write_text("{}")
    store.mark_done(deleted.id, {})
    store.mark_failed(failed.id, "ValueError: boom")
    store.mark_running(running.id)  # this (live) process
    # a changed recipe: the same slots with another config (the first data set gets a new lr)
    changed = load_suite(_suite(tmp_path, BASIC.replace("datasets: [synthetic/binary, synthetic/multiclass]",
                                                        "datasets: [{name: synthetic/binary, set: {optim.lr: 0.01}}, "
                                                        "synthetic/multiclass]")), out_dir=tmp_path / "o")
    steps = {st.cell.id: st for st in plan(s, store)}
    assert (steps[done.id].action, steps[done.id].reason) == ("reuse", "finished earlier")
    assert steps[interrupted.id].action == "resume" and steps[interrupted.id].reason.startswith("interrupted")
    assert steps[deleted.id].action == "train" and "was deleted by hand" in steps[deleted.id].reason
    assert steps[failed.id].action == "train" and "failed earlier (ValueError: boom)" in steps[failed.id].reason
    assert steps[running.id].action == "running"
    assert steps[s.cells[5].id].reason == "new"
    csteps = plan(changed, store)
    c0 = next(st for st in csteps if st.cell.slot == done.slot)
    assert c0.action == "train" and c0.reason == f"changed since cell {done.id}: optim.lr: 0.001 -> 0.01"
    assert next(st for st in csteps if st.cell.dataset == "synthetic/multiclass").cell.id in {c.id for c in s.cells}


def test_nproc_is_per_cell_and_not_part_of_the_id(tmp_path):
    text = BASIC.replace("mlp: {set: {model.name: mlp}}", "mlp: {set: {model.name: mlp}, nproc: 2}")
    text = text.replace("datasets: [synthetic/binary, synthetic/multiclass]",
                        "datasets: [synthetic/binary, {name: synthetic/multiclass, nproc: 3}]") + "nproc: 4\n"
    s = load_suite(_suite(tmp_path, text), out_dir=tmp_path / "o")
    got = {(c.dataset, c.model): c.nproc for c in s.cells}
    # the data set's key, else the model's, else the suite's
    assert got == {("synthetic/binary", "cnn"): 4, ("synthetic/binary", "mlp"): 2,
                   ("synthetic/multiclass", "cnn"): 3, ("synthetic/multiclass", "mlp"): 3}
    plain = load_suite(_suite(tmp_path, BASIC), out_dir=tmp_path / "o")
    assert [c.id for c in s.cells] == [c.id for c in plain.cells] and {c.nproc for c in plain.cells} == {1}
    cli = load_suite(_suite(tmp_path, text), out_dir=tmp_path / "o", nproc=1)  # --nproc wins over the file
    assert {c.nproc for c in cli.cells} == {1} and [c.id for c in cli.cells] == [c.id for c in s.cells]


@pytest.mark.parametrize("where, value", [("cli", 0), ("cli", -2), ("suite", 0), ("model", "two"), ("dataset", 0)])
def test_nproc_must_be_positive(tmp_path, where, value):
    text = BASIC
    if where == "suite":
        text += f"nproc: {value}\n"
    elif where == "model":
        text = text.replace("mlp: {set: {model.name: mlp}}", f"mlp: {{set: {{model.name: mlp}}, nproc: {value}}}")
    elif where == "dataset":
        text = text.replace("[synthetic/binary,", f"[{{name: synthetic/binary, nproc: {value}}},")
    expected = {"cli": r"^--nproc: ", "suite": r"s\.yaml: nproc: ", "model": r"models\.mlp: nproc: ",
                "dataset": r"datasets\[0\]: nproc: "}[where]
    with pytest.raises(ConfigError, match=expected + rf"expected a positive integer number of training processes per cell, "
                                                     rf"found {value!r}$"):
        load_suite(_suite(tmp_path, text), nproc=value if where == "cli" else None)


def test_cli_refuses_nproc_zero(tmp_path, capsys):
    from openmia.cli.main import main

    rc = main(["benchmark", "run", str(_suite(tmp_path, BASIC)), "--nproc", "0", "--out-dir", str(tmp_path / "o")])
    assert rc != 0 and "--nproc: expected a positive integer" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
