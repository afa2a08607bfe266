"""nnU-Net v2 raw data sets: ``dataset.json`` + ``imagesTr/`` + ``labelsTr/`` (+ ``imagesTs/``, ``labelsTs/``).

``dataset.json`` gives ``channel_names`` (``{"0": "CT"}``; one image file per channel, named
``<case>_<XXXX><file_ending>`` with ``XXXX`` the channel index; an RGB PNG is one file holding
three channels), ``labels`` (``{"background": 0,
"tumour": 1}``; region-based labels are not supported) and ``file_ending`` (``.nii.gz``, ``.png``,
...). ``numTraining``, when present, must match ``imagesTr``. Test images in ``imagesTs/`` count
only with their labels in ``labelsTs/`` (nnU-Net keeps test labels elsewhere; openmia scores a
test split only where labels exist): then they are the test split. Every problem names the file.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from openmia.data.problems import RAISE, Problems
from openmia.data.readers.folder import SegCase, parse_labels, read_json
from openmia.errors import DataError

_CHANNEL = re.compile(r"^(?P<case>.+)_(?P<ch>\d{4})$")


@dataclass(frozen=True)
class NNUNetIndex:
    """What ``dataset.json`` and the folders say: channel names, label names by value, file ending,
    the training cases and the labelled test cases (empty without ``labelsTs/``)."""

    root: Path
    name: str
    channel_names: tuple[str, ...]
    label_names: tuple[str, ...]
    file_ending: str
    training: tuple[SegCase, ...]
    test: tuple[SegCase, ...]
    licence: str
    unlabelled_test: int = 0  # imagesTs cases without labels (not used)


def _cases(images: Path, labels: Path | None, ending: str, n_channels: int, problems: Problems) -> list[SegCase]:
    by_case: dict[str, dict[int, Path]] = {}
    for p in sorted(images.iterdir()):
        if p.name.startswith(".") or p.is_dir():
            continue
        m = _CHANNEL.match(p.name[: -len(ending)]) if p.name.endswith(ending) else None
        if m is None:
            problems.add(f"{p}: not named <case>_<XXXX>{ending} (XXXX = the 4-digit channel index, e.g. case_0000{ending})")
            continue
        by_case.setdefault(m["case"], {})[int(m["ch"])] = p
    out = []
    counts = Counter(len(ch) for ch in by_case.values())
    n_files = counts.most_common(1)[0][0] if counts else 0  # the usual number of files per case
    for cid, chans in sorted(by_case.items()):
        # one file per channel; an RGB PNG is one file holding three (nnU-Net's natural images)
        if sorted(chans) != list(range(len(chans))) or len(chans) > n_channels or len(chans) != n_files:
            problems.add(f"{images}: case {cid!r} has channel file(s) {sorted(chans)}; dataset.json's channel_names "
                         f"expect {list(range(n_channels))} ({cid}_0000{ending}, ...)")
            continue
        mask = labels / f"{cid}{ending}" if labels is not None else None
        if mask is not None and not mask.is_file():
            problems.add(f"{chans[0]}: image without a label (expected {mask})")
            continue
        out.append(SegCase(cid, tuple(chans[i] for i in range(len(chans))), mask))
    if labels is not None:
        for p in sorted(labels.iterdir()):
            if p.name.endswith(ending) and p.name[: -len(ending)] not in by_case and not p.name.startswith("."):
                problems.add(f"{p}: label without an image (expected {images / (p.name[: -len(ending)] + '_0000' + ending)})")
    return out


def read_nnunet_index(root: str | Path, problems: Problems = RAISE) -> NNUNetIndex:
    """Parse and check an nnU-Net v2 raw data set folder (see the module docstring)."""
    root = Path(root)
    meta_path = root / "dataset.json"
    if not meta_path.is_file():
        raise DataError(f"{root}: no dataset.json; expected an nnU-Net v2 raw data set (dataset.json, imagesTr/, labelsTr/)")
    meta = read_json(meta_path)
    missing = [k for k in ("channel_names", "labels", "file_ending") if k not in meta]
    if missing:
        hint = " (this looks like an MSD folder: use msd:PATH)" if "modality" in meta else ""
        raise DataError(f"{meta_path}: missing key(s) {missing}{hint}")
    chan = meta["channel_names"]
    if not isinstance(chan, dict) or not chan:
        raise DataError(f"{meta_path}: 'channel_names' must be an object {{\"0\": \"CT\", ...}}, found {chan!r}")
    try:
        channels = tuple(str(chan[str(i)]) for i in range(len(chan)))
    except KeyError as exc:
        raise DataError(f"{meta_path}: 'channel_names' must be keyed 0..n-1 without gaps (missing {exc})") from None
    labels = parse_labels(meta["labels"], str(meta_path))
    ending = meta["file_ending"]
    if not isinstance(ending, str) or not ending.startswith("."):
        raise DataError(f"{meta_path}: 'file_ending' must be like '.nii.gz' or '.png', found {ending!r}")
    for sub in ("imagesTr", "labelsTr"):
        if not (root / sub).is_dir():
            raise DataError(f"{root}: no {sub}/ folder (nnU-Net v2 raw layout: imagesTr/, labelsTr/, dataset.json)")
    training = _cases(root / "imagesTr", root / "labelsTr", ending, len(channels), problems)
    n = meta.get("numTraining")
    if isinstance(n, int) and n != len(training) and not problems.items:
        problems.add(f"{meta_path}: numTraining is {n} but imagesTr/ holds {len(training)} case(s)")
    test: list[SegCase] = []
    unlabelled = 0
    if (root / "labelsTs").is_dir():
        if not (root / "imagesTs").is_dir():
            raise DataError(f"{root}: labelsTs/ without imagesTs/")
        test = _cases(root / "imagesTs", root / "labelsTs", ending, len(channels), problems)
    elif (root / "imagesTs").is_dir():
        unlabelled = len(_cases(root / "imagesTs", None, ending, len(channels), problems))
    dup = sorted({c.case_id for c in training} & {c.case_id for c in test})
    if dup:
        problems.add(f"{root}: case(s) {dup[:5]} are in both imagesTr/ and imagesTs/")
    if not training:
        raise DataError(f"{root / 'imagesTr'}: no training cases")
    return NNUNetIndex(root, str(meta.get("name", root.name)), channels, labels, ending, tuple(training), tuple(test),
                       str(meta.get("licence", meta.get("license", ""))), unlabelled)
