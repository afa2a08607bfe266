"""Segmentation evaluation in worker processes (``--workers``): same results, same errors, progress."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from openmia.errors import ConfigError, PredictionError
from openmia.evaluation.parallel import available_cpus, map_cases, parse_workers, resolve_workers
from openmia.evaluation.segmentation import evaluate_folders, evaluate_segmentation


def _pair(i: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.zeros((12, 14, 10), np.uint8)
    t[2:8, 3 : 7 + i % 4, 2:7] = 1
    t[9:11, 2 : 6 + i % 4, 3:8] = 2
    p = np.roll(t, i % 3, axis=1)
    p[0, 0, : i % 5] = 2  # small spurious islands: HD and lesion counts differ per case
    return p, t


@pytest.fixture
def npy_folders(tmp_path: Path) -> tuple[Path, Path]:
    pd, td = tmp_path / "pred", tmp_path / "truth"
    pd.mkdir()
    td.mkdir()
    for i in range(9):
        p, t = _pair(i)
        np.save(pd / f"c{i:02d}.npy", p)
        np.save(td / f"c{i:02d}.npy", t)
    return pd, td


class ArrayLoader:
    """A picklable loader over in-memory cases (module level, so worker processes can import it)."""

    def __init__(self, n: int, bad: dict[str, str] | None = None) -> None:
        self.n, self.bad = n, bad or {}

    def __call__(self, cid: str):
        kind = self.bad.get(cid)
        if kind == "crash":
            raise RuntimeError("simulated reader failure")
        p, t = _pair(int(cid[1:]))
        if kind == "label":
            p = p.copy()
            p[0, 0, 0] = 7
        return p, t, (1.0, 0.8, 2.0)


def test_workers_give_identical_results_in_the_same_order(npy_folders):
    pd, td = npy_folders
    kw = dict(spacing=(1.0, 0.8, 2.0), lesions=True, n_resamples=200, tolerance={1: 1.0, 2: 2.0})
    one = evaluate_folders(pd, td, workers=1, **kw)
    two = evaluate_folders(pd, td, workers=2, **kw)
    assert [r[:3] for r in one.per_case] == [r[:3] for r in two.per_case]  # same rows in the same order
    np.testing.assert_array_equal([r[3] for r in one.per_case], [r[3] for r in two.per_case])  # bit-identical (NaN = NaN)
    assert repr(one.summary) == repr(two.summary)
    assert one.extras["cases"] == two.extras["cases"] == [f"c{i:02d}" for i in range(9)]
    for key, arr in one.extras["table"].items():
        np.testing.assert_array_equal(arr, two.extras["table"][key])
    # the cases differ (not a trivially constant table)
    assert len({round(v, 9) for c, lab, m, v in one.per_case if m == "dice" and lab == "1"}) > 2


def test_error_in_a_worker_is_the_same_openmia_error_naming_the_first_bad_case():
    cases = [f"c{i}" for i in range(8)]
    load = ArrayLoader(8, {"c3": "label", "c6": "label"})
    msgs = []
    for workers in (1, 2):
        with pytest.raises(PredictionError) as info:
            evaluate_segmentation(cases, load, labels=[1, 2], n_resamples=20, workers=workers)
        msgs.append(str(info.value))
        assert info.value.__cause__ is None  # no pickled worker traceback attached to a clean openmia error
    assert msgs[0] == msgs[1] == "case 'c3': prediction contains label(s) [7] outside the labels [1, 2]"


def test_unexpected_exception_in_a_worker_becomes_a_prediction_error_naming_the_case():
    cases = [f"c{i}" for i in range(5)]
    msgs = []
    for workers in (1, 2):
        with pytest.raises(PredictionError) as info:
            evaluate_segmentation(cases, ArrayLoader(5, {"c2": "crash"}), n_resamples=20, workers=workers)
        msgs.append(str(info.value))
    assert msgs[0] == msgs[1] == "case 'c2': scoring failed with RuntimeError: simulated reader failure"


def test_a_closure_loader_needs_workers_1():
    data = {f"c{i}": (*_pair(i), (1.0, 1.0, 1.0)) for i in range(3)}
    res = evaluate_segmentation(list(data), lambda c: data[c], n_resamples=20, workers=1, worst_cases=0)
    assert res.summary["n_cases"] == 3
    with pytest.raises(ConfigError, match="picklable per-case loader.*workers=1"):
        evaluate_segmentation(list(data), lambda c: data[c], n_resamples=20, workers=2)


def test_progress_advances_once_per_finished_case():
    seen: list[tuple[int, int]] = []
    out = map_cases(str.upper, ["a", "b", "c", "d", "e"], workers=2, progress=lambda d, t: seen.append((d, t)))
    assert out == ["A", "B", "C", "D", "E"]
    assert seen == [(i, 5) for i in range(1, 6)]


def test_workers_values():
    assert resolve_workers(None) == 1 and resolve_workers(1, 10) == 1
    assert resolve_workers(0) == resolve_workers("auto") == available_cpus()
    assert resolve_workers(8, 3) == 3  # never more processes than cases
    assert parse_workers("auto") == "auto" and parse_workers(" 3 ") == 3
    with pytest.raises(ConfigError, match="--workers.*found -2"):
        resolve_workers(-2)
    with pytest.raises(ConfigError, match="--workers.*found 'two'"):
        parse_workers("two")
    with pytest.raises(ConfigError, match="--workers"):
        resolve_workers(1.5)


def test_cli_workers(npy_folders, tmp_path, capsys):
    from openmia.cli.main import main

    pd, td = npy_folders
    base = ["evaluate", "--task", "segmentation", "--pred", str(pd), "--truth", str(td), "--spacing", "1,0.8,2",
            "--resamples", "50", "--worst-cases", "0"]
    assert main([*base, "--out", str(tmp_path / "o1"), "--workers", "1"]) == 0
    assert main([*base, "--out", str(tmp_path / "o2"), "--workers", "2"]) == 0
    assert (tmp_path / "o1" / "per_case.csv").read_text() == (tmp_path / "o2" / "per_case.csv").read_text()
    capsys.readouterr()
    assert main([*base, "--out", str(tmp_path / "o3"), "--workers", "many"]) == 2
    assert "--workers: expected a whole number" in capsys.readouterr().err


class KillingLoader(ArrayLoader):
    """Kills its worker process on case 'c1' (as the OOM killer would)."""

    def __call__(self, cid: str):
        if cid == "c1":
            import os
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
        return super().__call__(cid)


def test_a_killed_worker_is_an_openmia_error():
    from openmia.errors import OpenmiaError

    with pytest.raises(OpenmiaError, match="worker process ended abruptly with cases unscored.*workers=1"):
        evaluate_segmentation([f"c{i}" for i in range(4)], KillingLoader(4), n_resamples=20, workers=2)
