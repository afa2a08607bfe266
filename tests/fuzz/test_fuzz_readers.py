"""Fuzzing every reader of user files (issue 21, "Stay hardened"): whatever the bytes, the only
exceptions that may leave a reader are openmia's own (:class:`~openmia.errors.OpenmiaError`).

Readers: the prediction/truth CSVs of classification, detection, counting and clustering; the
label-map reader (PNG, NPY, NIfTI with header mutations); the MedMNIST npz reader; the VOC, COCO
and dot/point readers; the config parser (YAML file and ``--set`` overrides). Inputs are random
bytes, structured-but-wrong files, and byte mutations of valid files. Profiles: tests/fuzz/conftest.py.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openmia.errors import OpenmiaError

PROFILES = ["quick", pytest.param("slow", marks=pytest.mark.slow)]


def fuzz(profile: str, stats: dict, weight: float, strategy: st.SearchStrategy, check: Callable[[Any], None]) -> None:
    """Run ``check`` on ``weight`` x the profile's ``max_examples`` inputs; an exception other than
    OpenmiaError fails the test (hypothesis shrinks the input and prints it)."""
    base = settings.get_profile("slow" if profile == "slow" else os.environ.get("OPENMIA_FUZZ_PROFILE", "quick"))

    @settings(base, max_examples=max(5, int(base.max_examples * weight)))
    @given(strategy)
    def run(data):
        stats["inputs"] += 1
        try:
            check(data)
        except OpenmiaError:
            pass

    run()


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


# ----------------------------------------------------------------------------- generic strategies

TOKENS = ["", "0", "1", "2", "-1", "0.5", "1.0", "1e-4", ".5", "1_000", "1e309", "-1e309", "nan", "NaN", "inf", "-inf",
          "0x10", "abc", "a", "b", "c", "cell", "case1", "case2", " ", "  1  ", '"', '""', '"a,b"', "\t", "\x00", "é",
          "\u202e", "9" * 40, "True", "None", "[]", "{}", "1,2", "-0", "+1", "1e5", "3.5", "100", "0.25"]
COLUMNS = ["case_id", "label", "score", "count", "cluster", "patient_id", "image_id", "x", "y", "z", "x1", "y1", "x2",
           "y2", "z1", "z2", "a", "b", "c", "p0", "p1", "", "CASE_ID", " case_id"]
cells = st.one_of(st.sampled_from(TOKENS), st.text(max_size=6), st.floats().map(repr), st.integers(-3, 12).map(str))


@st.composite
def mutated(draw, base: bytes, hot: int | None = None) -> bytes:
    """``base`` with 1-4 byte edits (flip, set, insert, delete, truncate); ``hot``: most edits
    fall in the first ``hot`` bytes (a header)."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            data += draw(st.binary(min_size=1, max_size=4))
            continue
        limit = min(len(data), hot) if hot and draw(st.integers(0, 4)) else len(data)
        i = draw(st.integers(0, limit - 1))
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "set":
            data[i] = draw(st.sampled_from([0, 1, 0x7F, 0x80, 0xFF, ord("9"), ord("-")]))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[i : i + draw(st.integers(1, 16))]
        else:
            del data[i:]
    return bytes(data)


@st.composite
def csv_bytes(draw, columns: list[str] = COLUMNS) -> bytes:
    header = draw(st.lists(st.sampled_from(columns), max_size=7))
    rows = draw(st.lists(st.lists(cells, min_size=max(0, len(header) - 1), max_size=len(header) + 1), max_size=8))
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = eol.join(",".join(r) for r in [header, *rows]) + draw(st.sampled_from(["", eol]))
    return text.encode(draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16"])))


def any_bytes(*bases: bytes, hot: int | None = None) -> st.SearchStrategy:
    options = [st.binary(max_size=300)] + [mutated(b, hot) for b in bases] + [st.just(b) for b in bases]
    return st.one_of(*options)


def put(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


# ----------------------------------------------------------------------------- prediction CSVs

BIN_PRED = b"case_id,score\nc1,0.9\nc2,0.2\nc3,0.6\n"
BIN_TRUTH = b"case_id,label\nc1,1\nc2,0\nc3,1\n"
MC_PRED = b"case_id,a,b,c\nc1,0.2,0.3,0.5\nc2,0.6,0.2,0.2\nc3,0,1,0\n"
ML_TRUTH = b"case_id,a,b,c,patient_id\nc1,1,0,1,p1\nc2,0,0,1,p1\nc3,1,1,0,p2\n"
DET_TRUTH = b"case_id,label,x1,y1,x2,y2\nc1,cell,1,1,5,5\nc2,,,,,\nc3,cell,2,2,4,9\n"
DET_PRED = b"case_id,label,x1,y1,x2,y2,score\nc1,cell,1,1,5,6,0.9\nc3,cell,2,2,4,8,0.3\n"
PTS = b"case_id,label,x,y,score\nc1,cell,1,2,0.5\nc2,cell,3,4,0.9\n"
COUNTS = b"case_id,count,label\nc1,3,a\nc2,0,a\nc3,7,b\n"
CLUSTERS = b"case_id,cluster\nc1,x\nc2,y\nc3,x\n"
csv_inputs = st.one_of(csv_bytes(), any_bytes(BIN_PRED, BIN_TRUTH, MC_PRED, ML_TRUTH, DET_TRUTH, DET_PRED, PTS, COUNTS, CLUSTERS))


@pytest.mark.parametrize("profile", PROFILES)
def test_fuzz_csv_table_reader(profile, fuzz_stats, work):
    from openmia.evaluation.io import read_csv

    def check(data):
        read_csv(put(work / "t.csv", data), ("case_id",))

    fuzz(profile, fuzz_stats, 1.5, csv_inputs, check)


@pytest.mark.parametrize("profile", PROFILES)
def test_fuzz_classification_alignment(profile, fuzz_stats, work):
    from openmia.evaluation.io import align_classification

    strategy = st.tuples(csv_inputs, csv_inputs, st.sampled_from([None, "binary", "multi-class", "ordinal", "multi-label"]),
                         st.booleans(), st.one_of(st.none(), csv_inputs))

    def check(args):
        pred, truth, task_type, allow_missing, patients = args
        align_classification(put(work / "p.csv", pred), put(work / "t.csv", truth), task_type=task_type,
                             allow_missing=allow_missing,
                             patients_csv=None if patients is None else put(work / "pt.csv", patients))

    fuzz(profile, fuzz_stats, 1.5, strategy, check)


@pytest.mark.parametrize("profile", PROFILES)
def test_fuzz_object_and_keyed_readers(profile, fuzz_stats, work):
    from openmia.evaluation.other_tasks import _read_detections, _read_keyed

    strategy = st.tuples(csv_inputs, st.integers(0, 4), st.booleans())

    def check(args):
        data, which, flag = args
        path = put(work / "o.csv", data)
        if which == 0:
            _read_detections(path, with_score=flag, images=["c1", "c2", "c3"] if flag else None)
        elif which == 1:
            _read_detections(path, with_score=flag, images=None)
        else:
            col = ("count", "label", "cluster")[which - 2]
            _read_keyed(path, col, role="truth", numeric=col == "count" or flag)

    fuzz(profile, fuzz_stats, 1.5, strategy, check)


@pytest.mark.parametrize("profile", PROFILES)
def test_fuzz_evaluators_end_to_end(profile, fuzz_stats, work):
    """The whole evaluators (validation, metrics, bootstrap) on fuzzed pairs; fewer inputs, each slower."""
    from openmia.evaluation import other_tasks as T
    from openmia.evaluation.classification import evaluate_files

    pairs = {
        "classification": (BIN_PRED, BIN_TRUTH), "multi-class": (MC_PRED, b"case_id,label\nc1,2\nc2,0\nc3,1\n"),
        "detection": (DET_PRED, DET_TRUTH), "counting": (COUNTS, COUNTS), "clustering": (CLUSTERS, b"case_id,label\nc1,1\nc2,1\nc3,2\n"),
    }

    @st.composite
    def case(draw):
        task = draw(st.sampled_from(sorted(pairs)))
        pred, truth = pairs[task]
        side = draw(st.integers(0, 2))
        if side != 1:
            pred = draw(st.one_of(mutated(pred), csv_bytes()))
        if side != 0:
            truth = draw(st.one_of(mutated(truth), csv_bytes()))
        return task, pred, truth, draw(st.booleans())

    def check(args):
        task, pred, truth, allow_missing = args
        p, t = put(work / "ep.csv", pred), put(work / "et.csv", truth)
        kw = dict(n_resamples=20, seed=0)
        if task in ("classification", "multi-class"):
            evaluate_files(p, t, allow_missing=allow_missing, **kw)
        elif task == "detection":
            T.evaluate_detection_files(p, t, **kw)
        elif task == "counting":
            T.evaluate_counting_files(p, t, allow_missing=allow_missing, **kw)
        else:
            T.evaluate_clustering_files(p, t, n_resamples=5)

    fuzz(profile, fuzz_stats, 0.15, case(), check)


# ----------------------------------------------------------------------------- label maps


def _png(arr: np.ndarray, mode: str | None = None) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format="PNG")
    return buf.getvalue()


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def _nii(arr: np.ndarray, zooms=(1.0, 1.0, 2.5)) -> bytes:
    import nibabel as nib

    img = nib.Nifti1Image(arr, np.diag([*zooms, 1.0]))
    return img.to_bytes()


LAB = np.zeros((6, 6, 4), np.uint8)
LAB[1:4, 2:5, 1:3] = 1
LAB[4, 4, 3] = 2


@pytest.fixture(scope="module")
def label_bases() -> dict[str, list[bytes]]:
    pytest.importorskip("nibabel")
    nii = _nii(LAB)
    return {
        ".png": [_png(LAB[..., 1]), _png(np.repeat(LAB[..., 1:2] * 80, 3, axis=2)), _png(LAB[..., 1].astype(np.uint16) * 300)],
        ".npy": [_npy(LAB), _npy(LAB.astype(np.float32)), _npy(LAB[..., 0].astype(np.int64) - 1)],
        ".nii": [nii, _nii(LAB.astype(np.float32), (0.5, 0.5, 1.0))],
        ".nii.gz": [gzip.compress(nii)],
    }


@pytest.mark.parametrize("profile", PROFILES)
def test_fuzz_label_map_reader(profile, fuzz_stats, work, label_bases):
    from openmia.evaluation.label_maps import LabelMap, read_label_map, resolve_spacing

    @st.composite
    def case(draw):
        suffix = draw(st.sampled_from(sorted(label_bases)))
        base = draw(st.sampled_from(label_bases[suffix]))
        if suffix == ".nii.gz" and draw(st.booleans()):  # mutate the NIfTI header inside the gzip stream
            return suffix, gzip.compress(draw(mutated(gzip.decompress(base), hot=352)))
        return suffix, draw(st.one_of(mutated(base, hot=352 if suffix.startswith(".nii") else 128), st.binary(max_size=400)))

    truth = LabelMap(LAB, (1.0, 1.0, 2.5))

    def check(args):
        suffix, data = args
        lm = read_label_map(put(work / f"case{suffix}", data), "case")
        if lm.array.ndim == 3:
            resolve_spacing("case", lm, truth, None, 3)
            resolve_spacing("case", truth, lm, None, 3)
        resolve_spacing("case", lm, lm, None, lm.array.ndim)

    fuzz(profile, fuzz_stats, 2.0, case(), check)


# ----------------------------------------------------------------------------- npz


def _toy_spec():
    from openmia.data.catalog import get_spec

    return dataclasses.replace(get_spec("retinamnist"), split_sizes=(("train", 3), ("val", 3), ("test", 3)))


@pytest.mark.parametrize("profile", PROFILES)
def test_fuzz_npz_reader(profile, fuzz_stats, work):
    from openmia.data.readers.npz import read_split

    spec = _toy_spec()
    bases = []
    for save in (np.savez, np.savez_compressed):
        buf = io.BytesIO()
        save(buf, train_images=np.arange(3 * 28 * 28 * 3, dtype=np.uint8).reshape(3, 28, 28, 3),
             train_labels=np.array([[0], [4], [2]]))
        bases.append(buf.getvalue())
    small = io.BytesIO()  # a member whose npy header is the thing to mutate
    with zipfile.ZipFile(small, "w") as z:
        z.writestr("train_images.npy", _npy(np.zeros((3, 28, 28, 3), np.uint8))[:128] + b"\0" * 64)
        z.writestr("train_labels.npy", _npy(np.zeros((3, 1), np.int64)))
    bases.append(small.getvalue())

    def check(data):
        read_split(put(work / "toy.npz", data), spec, "train")

    fuzz(profile, fuzz_stats, 1.5, st.one_of(*(mutated(b) for b in bases), mutated(bases[2], hot=200), st.binary(max_size=300)), check)


# ----------------------------------------------------------------------------- VOC, COCO, dots

VOC = (b"<annotation><filename>im1.jpg</filename><size><width>64</width><height>48</height><depth>3</depth></size>"
       b"<object><name>RBC</name><bndbox><xmin>3</xmin><ymin>4</ymin><xmax>20</xmax><ymax>30</ymax></bndbox></object>"
       b"<object><name>WBC</name><bndbox><xmin>5</xmin><ymin>5</ymin><xmax>5</xmax><ymax>9</ymax></bndbox></object>"
       b"</annotation>")


@st.composite
def voc_xml(draw) -> bytes:
    def el(tag, body):
        return f"<{tag}>{body}</{tag}>"

    num = st.one_of(cells, st.integers(-10, 100).map(str))
    objs = draw(st.lists(st.tuples(st.sampled_from(["RBC", "WBC", "", "x", "<"]), num, num, num, num), max_size=3))
    size = el("size", el("width", draw(num)) + el("height", draw(num))) if draw(st.booleans()) else ""
    body = (el("filename", draw(st.sampled_from(["im.jpg", "", " "]))) + size
            + "".join(el("object", el("name", n) + el("bndbox", el("xmin", a) + el("ymin", b) + el("xmax", c) + el("ymax", d)))
                      for n, a, b, c, d in objs))
    return el("annotation", body).encode("utf-8", errors="replace")


@pytest.mark.parametrize("profile", PROFILES)
def test_fuzz_voc_reader(profile, fuzz_stats, work):
    from openmia.data.readers.voc import read_voc_file

    def check(args):
        data, classes = args
        read_voc_file(put(work / "a.xml", data), check_image=False, classes=classes)

    fuzz(profile, fuzz_stats, 1.0, st.tuples(st.one_of(voc_xml(), any_bytes(VOC)), st.sampled_from([None, ("RBC", "WBC")])), check)


json_values = st.recursive(st.none() | st.booleans() | st.integers(-5, 10**12) | st.floats() | st.text(max_size=5),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3), max_leaves=8)
ids = st.one_of(st.integers(-1, 3), st.sampled_from(["1", "a", ""]), json_values)
nums = st.one_of(st.integers(-5, 120), st.floats(), st.sampled_from(["3", None, True]), json_values)
coco_images = st.fixed_dictionaries({"id": ids, "file_name": st.one_of(st.sampled_from(["a.png", "b.png", "", "../x"]), json_values),
                                     "width": nums, "height": nums})
coco_anns = st.fixed_dictionaries({"id": ids, "image_id": ids, "category_id": ids,
                                   "bbox": st.one_of(st.lists(nums, max_size=5), json_values)},
                                  optional={"iscrowd": st.sampled_from([0, 1, True, "1", None, 2])})
coco_cats = st.fixed_dictionaries({"id": ids, "name": st.one_of(st.sampled_from(["cell", "RBC", ""]), json_values)})
coco_docs = st.one_of(
    st.fixed_dictionaries({"images": st.lists(st.one_of(coco_images, json_values), max_size=3),
                           "annotations": st.lists(st.one_of(coco_anns, json_values), max_size=4),
                           "categories": st.lists(st.one_of(coco_cats, json_values), max_size=3)}),
    json_values)
COCO = json.dumps({"images": [{"id": 1, "file_name": "a.png", "width": 50, "height": 40}],
                   "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 20], "iscrowd": 0}],
                   "categories": [{"id": 1, "name": "cell"}]}).encode()


@pytest.mark.parametrize("profile", PROFILES)
def test_fuzz_coco_reader(profile, fuzz_stats, work):
    from openmia.data.readers.coco import read_coco

    def check(args):
        data, classes = args
        read_coco(put(work / "c.json", data), check_images=False, classes=classes)

    strategy = st.tuples(st.one_of(coco_docs.map(lambda d: json.dumps(d).encode()), any_bytes(COCO)),
                         st.sampled_from([None, ("cell",), ("cell", "RBC")]))
    fuzz(profile, fuzz_stats, 1.0, strategy, check)


@pytest.mark.parametrize("profile", PROFILES)
def test_fuzz_dot_and_point_readers(profile, fuzz_stats, work):
    from openmia.data.readers.dots import read_dots, read_points_csv

    dots = np.zeros((8, 8, 3), np.uint8)
    dots[2, 3] = (255, 0, 0)
    pngs = [_png(dots), _png(dots[..., 0]), _png(np.dstack([dots, np.full((8, 8), 255, np.uint8)]))]
    points = b"image_id,x,y,label\na,1,2,cell\nb,3.5,4,cell\n"
    strategy = st.one_of(
        st.tuples(st.just("csv"), st.one_of(csv_bytes(["image_id", "x", "y", "label", "X", ""]), any_bytes(points)),
                  st.sampled_from([None, ("a", "b")])),
        st.tuples(st.just("png"), any_bytes(*pngs), st.none()))

    def check(args):
        kind, data, image_ids = args
        if kind == "csv":
            read_points_csv(put(work / "p.csv", data), image_ids=image_ids)
        else:
            read_dots(put(work / "d.png", data))

    fuzz(profile, fuzz_stats, 1.0, strategy, check)


# ----------------------------------------------------------------------------- config

KEYS = ["task", "name", "out_dir", "train.epochs", "train.seed", "train.threads", "optim.lr", "optim.name", "model.name",
        "model.kwargs.width", "data.dataset", "data.batch_size", "data.augment", "schedule.name", "eval.n_resamples",
        "eval.tta_scales", "segmentation.tta_scales", "a.b", "train", "", ".", "train..epochs", "model.kwargs"]
YAML_VALUES = ["1", "0", "-3", "1e-4", "5E-4", ".5", "1_000", "1e999", "nan", ".inf", "true", "null", "~", "[1, 2]", "{a: 1}",
               "'x'", "cnn_small", "synthetic/binary", "[", "{", "!!python/object:os.system", "&a [*a]", "2001-12-14", "0x1F",
               "|\n  text", "- 1\n- 2", "'", "\"\\x\"", "*unknown", "!!binary aGVsbG8=", "1.5", "[1.0, 1.25]"]


@st.composite
def yaml_doc(draw) -> str:
    lines = []
    for _ in range(draw(st.integers(0, 5))):
        key = draw(st.sampled_from(KEYS)).split(".")
        value = draw(st.one_of(st.sampled_from(YAML_VALUES), st.text(max_size=6)))
        lines.append("".join(f"{'  ' * i}{k}:\n" for i, k in enumerate(key[:-1])) + f"{'  ' * (len(key) - 1)}{key[-1]}: {value}")
    return "\n".join(lines)


@pytest.mark.parametrize("profile", PROFILES)
def test_fuzz_config_parser(profile, fuzz_stats, work):
    from openmia.config import load_config

    override = st.one_of(st.builds(lambda k, v: f"{k}={v}", st.sampled_from(KEYS), st.one_of(st.sampled_from(YAML_VALUES), st.text(max_size=6))),
                         st.text(max_size=12))
    # bytes that are not UTF-8: see test_config_file_not_utf8_is_a_config_error
    binary_text = st.binary(max_size=80).map(lambda b: b.decode("utf-8", errors="replace"))
    strategy = st.tuples(st.one_of(st.none(), yaml_doc(), st.text(max_size=60), binary_text), st.lists(override, max_size=3))

    def check(args):
        doc, overrides = args
        path = None
        if doc is not None:
            path = work / "cfg.yaml"
            path.write_text(doc, encoding="utf-8", errors="replace")
        load_config(path, overrides)

    fuzz(profile, fuzz_stats, 1.5, strategy, check)


def test_config_file_not_utf8_is_a_config_error(tmp_path):
    """Found by test_fuzz_config_parser: the file was read outside the error handling."""
    from openmia.config import load_config, load_run_config

    (tmp_path / "cfg.yaml").write_bytes(b"train:\n  epochs: \xe4\n")
    with pytest.raises(OpenmiaError, match="cfg.yaml.*not UTF-8"):
        load_config(tmp_path / "cfg.yaml")
    with pytest.raises(OpenmiaError, match="cfg.yaml"):
        load_run_config(tmp_path / "cfg.yaml")


# ----------------------------------------------------------------------------- regressions found by the fuzzers


def test_voc_infinite_image_size_is_a_data_error(tmp_path):
    """``<width>inf</width>``: int(float("inf")) raised a bare OverflowError."""
    from openmia.data.readers.voc import read_voc_file
    from openmia.errors import DataError

    xml = b"<annotation><filename>im.jpg</filename><size><width>inf</width><height>4</height></size></annotation>"
    with pytest.raises(DataError, match=r"a\.xml: missing or invalid <size>"):
        read_voc_file(put(tmp_path / "a.xml", xml), check_image=False)
