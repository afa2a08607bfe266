"""COCO JSON boxes: conversion, the VOC drop-and-report policy, errors naming file and annotation,
agreement with pycocotools, and the VOC -> COCO round trip."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from openmia.data.readers.coco import read_coco, write_coco
from openmia.data.readers.voc import VOCImage, read_voc_file
from openmia.errors import DataError

CATS = [{"id": 3, "name": "WBC"}, {"id": 1, "name": "RBC"}, {"id": 7, "name": "Platelets"}]


def _coco(tmp_path, anns, *, images=None, cats=None, make_images=True):
    images = images if images is not None else [
        {"id": 1, "file_name": "a.png", "width": 100, "height": 80},
        {"id": 2, "file_name": "b.png", "width": 64, "height": 64},
        {"id": 5, "file_name": "empty.png", "width": 32, "height": 32},
    ]
    if make_images:
        for im in images:
            Image.new("L", (im["width"], im["height"])).save(tmp_path / im["file_name"])
    anns = [{"iscrowd": 0, **a} for a in anns]
    f = tmp_path / "ann.json"
    f.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats if cats is not None else CATS}))
    return f


GOOD = [
    {"id": 10, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 30]},
    {"id": 11, "image_id": 1, "category_id": 3, "bbox": [50.5, 20, 49.5, 60]},  # touches the right/bottom edges
    {"id": 12, "image_id": 2, "category_id": 7, "bbox": [0, 0, 5, 6]},
    {"id": 13, "image_id": 2, "category_id": 1, "bbox": [30, 30, 10, 10], "iscrowd": 1},
    {"id": 14, "image_id": 2, "category_id": 1, "bbox": [40, 40, 0, 8]},
]


def test_boxes_labels_classes_and_drop_policy(tmp_path, caplog):
    recs, classes = read_coco(_coco(tmp_path, GOOD))
    assert classes == ["RBC", "WBC", "Platelets"]  # sorted by category id
    assert [r.case_id for r in recs] == ["a", "b", "empty"] and all(isinstance(r, VOCImage) for r in recs)
    a, b, e = recs
    assert (a.width, a.height, a.image) == (100, 80, tmp_path / "a.png")
    assert a.boxes.tolist() == [[10, 10, 30, 40], [50.5, 20, 100, 80]] and a.labels == ["RBC", "WBC"]
    assert b.boxes.tolist() == [[0, 0, 5, 6]] and b.labels == ["Platelets"]
    assert len(b.dropped) == 2 and "annotation id 13 (image 'b.png', category 'RBC'): iscrowd" in b.dropped[0]
    assert "annotation id 14" in b.dropped[1] and "zero or negative size box" in b.dropped[1]
    assert e.boxes.shape == (0, 4) and e.labels == [] and e.dropped == []  # no annotations: kept, empty
    assert "dropped" in caplog.text and "iscrowd" in caplog.text
    # classes= sets the order and validates the names in use
    assert read_coco(tmp_path / "ann.json", classes=["Platelets", "WBC", "RBC", "Monocyte"])[1][0] == "Platelets"


def test_negative_size_box_is_dropped_like_voc(tmp_path):
    recs, _ = read_coco(_coco(tmp_path, [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [20, 20, -5, 10]}]))
    assert recs[0].boxes.shape == (0, 4) and "zero or negative size box" in recs[0].dropped[0]


@pytest.mark.parametrize("ann,msg", [
    ({"bbox": [90, 10, 20, 10]}, r"\(image 'a.png', category 'RBC'\): box \(90,10,110,20\) lies outside the 100x80"),
    ({"bbox": [-1, 10, 20, 10]}, "lies outside the 100x80 image"),
    ({"bbox": [10, 75, 20, 10]}, "lies outside the 100x80 image"),
    ({"category_id": 99}, "category 99\\): unknown category id 99"),
    ({"image_id": 42}, "image 42, category 'RBC'\\): unknown image id 42"),
    ({"bbox": [1, float("nan"), 2, 2]}, "non-finite box coordinates"),
    ({"bbox": [1, "2", 2, 2]}, "'bbox' must be four numbers"),
    ({"bbox": [1, 2, 2]}, "'bbox' must be four numbers"),
    ({"bbox": None}, "'bbox' must be four numbers"),
])
def test_errors_name_file_and_annotation(tmp_path, ann, msg):
    f = _coco(tmp_path, [{"id": 17, "image_id": 1, "category_id": 1, "bbox": [1, 1, 2, 2], **ann}])
    with pytest.raises(DataError, match=f"ann.json, annotation id 17 .*{msg}"):
        read_coco(f)


def test_unknown_class_name_and_missing_image(tmp_path):
    f = _coco(tmp_path, GOOD)
    with pytest.raises(DataError, match="annotation id 11 .*unknown class 'WBC'"):
        read_coco(f, classes=["RBC", "Platelets"])
    (tmp_path / "b.png").unlink()
    with pytest.raises(DataError, match=r"ann.json, image id 2 \('b.png'\): the annotated image .* does not exist"):
        read_coco(f)
    assert read_coco(f, check_images=False)[0][1].case_id == "b"
    recs, _ = read_coco(f, image_dir=tmp_path / "elsewhere", check_images=False)
    assert recs[0].image == tmp_path / "elsewhere" / "a.png"


@pytest.mark.parametrize("text,msg", [
    ("{not json", "not valid JSON"),
    ('{"images": [], "annotations": []}', r"missing key\(s\) \['categories'\]"),
    ("[1, 2]", "a COCO file is a JSON object"),
    ('{"images": {}, "annotations": [], "categories": []}', "'images' must be a list"),
])
def test_malformed_files(tmp_path, text, msg):
    f = tmp_path / "ann.json"
    f.write_text(text)
    with pytest.raises(DataError, match=f"ann.json: {msg}"):
        read_coco(f)
    with pytest.raises(DataError, match="cannot read the COCO file"):
        read_coco(tmp_path / "absent.json")


@pytest.mark.parametrize("images,anns,cats,msg", [
    ([{"id": 1, "file_name": "a.png", "height": 8}], [], CATS, r"image id 1 \('a.png'\): missing or non-numeric"),
    ([{"id": 1, "file_name": "a.png", "width": 0, "height": 8}], [], CATS, "image id 1 .*must be positive integers"),
    ([{"file_name": "a.png", "width": 8, "height": 8}], [], CATS, "image 1: needs an integer or string 'id'"),
    ([{"id": 1, "width": 8, "height": 8}], [], CATS, "image id 1: no 'file_name'"),
    ([{"id": 1, "file_name": "a.png", "width": 8, "height": 8}] * 2, [], CATS, "image id 1 .*duplicate image id"),
    ([], [{"image_id": 1}], CATS, "annotation 1: needs an integer or string 'id'"),
    ([], [], [{"id": 1, "name": "A"}, {"id": 1, "name": "B"}], "category id 1 .*duplicate category id"),
    ([], [], [{"id": 1}], "category 1: needs an 'id' and a non-empty 'name'"),
])
def test_bad_entries(tmp_path, images, anns, cats, msg):
    f = _coco(tmp_path, anns, images=images, cats=cats, make_images=False)
    with pytest.raises(DataError, match=f"ann.json, {msg}"):
        read_coco(f, check_images=False)


def test_duplicate_annotation_id(tmp_path):
    f = _coco(tmp_path, GOOD[:1] * 2)
    with pytest.raises(DataError, match="annotation id 10: duplicate annotation id"):
        read_coco(f)


def test_agrees_with_pycocotools(tmp_path, capsys):
    from pycocotools.coco import COCO

    rng = np.random.default_rng(0)
    images = [{"id": i, "file_name": f"im{i}.png", "width": 120, "height": 90} for i in (4, 2, 9)]
    anns = []
    for k in range(25):
        x, y = rng.uniform(0, 60), rng.uniform(0, 45)
        anns.append({"id": 100 + k, "image_id": int(rng.choice([4, 2])), "category_id": int(rng.choice([1, 3, 7])),
                     "bbox": [round(x, 2), round(y, 2), round(rng.uniform(1, 50), 2), round(rng.uniform(1, 40), 2)],
                     "area": 1.0, "iscrowd": int(k % 9 == 0)})
    f = _coco(tmp_path, anns, images=images)
    recs, classes = read_coco(f)
    coco = COCO(str(f))
    capsys.readouterr()  # pycocotools prints progress
    assert classes == [c["name"] for c in coco.loadCats(sorted(coco.getCatIds()))]
    assert [r.image.name for r in recs] == [im["file_name"] for im in coco.loadImgs([4, 2, 9])]
    for rec, iid in zip(recs, (4, 2, 9)):
        ref = coco.loadAnns(coco.getAnnIds(imgIds=[iid], iscrowd=False))
        want = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                         for a in ref]).reshape(-1, 4)
        np.testing.assert_allclose(rec.boxes, want)
        assert rec.labels == [coco.loadCats(a["category_id"])[0]["name"] for a in ref]
        assert len(rec.dropped) == len(coco.getAnnIds(imgIds=[iid])) - len(ref)  # the crowd ones


def test_voc_to_coco_round_trip(tmp_path):
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "JPEGImages").mkdir()
    recs = []
    for name, objs in [("x1", [("RBC", (10, 10, 30, 40)), ("WBC", (50, 20, 90, 70))]), ("x2", [])]:
        Image.new("RGB", (100, 80)).save(tmp_path / "JPEGImages" / f"{name}.jpg")
        body = "".join(f"<object><name>{n}</name><bndbox><xmin>{a}</xmin><ymin>{b}</ymin><xmax>{c}</xmax>"
                       f"<ymax>{d}</ymax></bndbox></object>" for n, (a, b, c, d) in objs)
        (tmp_path / "Annotations" / f"{name}.xml").write_text(
            f"<annotation><filename>{name}.jpg</filename><size><width>100</width><height>80</height></size>"
            f"{body}</annotation>")
        recs.append(read_voc_file(tmp_path / "Annotations" / f"{name}.xml"))
    recs[0].boxes = np.vstack([recs[0].boxes, [[0.1, 0.2, 99.9, 79.7]]])  # non-integer coordinates survive too
    recs[0].labels.append("RBC")
    out = write_coco(recs, ["RBC", "WBC", "Platelets"], tmp_path / "coco" / "ann.json")
    assert not list(out.parent.glob("*.tmp"))  # atomic: no temp file left behind
    back, classes = read_coco(out, image_dir=tmp_path / "JPEGImages")
    assert classes == ["RBC", "WBC", "Platelets"]
    for r, s in zip(recs, back):
        assert (s.case_id, s.image, s.width, s.height, s.labels) == (r.case_id, r.image, r.width, r.height, r.labels)
        np.testing.assert_allclose(s.boxes, r.boxes, atol=1e-9)
    with pytest.raises(DataError, match="case 'x1': unknown class 'WBC'"):
        write_coco(recs, ["RBC"], tmp_path / "bad.json")
