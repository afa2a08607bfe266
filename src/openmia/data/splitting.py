"""Splits of user data sets, and the fingerprints and checksums that make a run reproducible.

The rule (documented in ``docs/data.md``):

1. A ``split.json`` in the data set's folder (``{"train": [ids], "val": [ids], "test": [ids]}``;
   ``val`` optional) is used as written; every case must be in exactly one split.
2. Otherwise splits the data set gives (nnU-Net/MSD ``imagesTs`` + ``labelsTs``, VOC
   ``ImageSets/Main/test.txt``, COCO ``test.json``) are kept; a missing validation split is made
   from the training cases (15 %, seeded, stratified for classification).
3. Otherwise openmia makes them, seeded by ``seed`` and stratified by class for single-label
   classification (scikit-learn): fewer than :data:`SMALL_SET` cases -> :data:`FOLDS`-fold
   cross-validation, ``fold`` = the test fold, 15 % of the rest validation; otherwise 70 / 15 / 15.

Split sizes depend on the fold only, never on the seed (scikit-learn allocates stratified folds
and fixed-size hold-outs deterministically), so a data set's spec is the same for every seed.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from openmia.errors import ConfigError, DataError

SMALL_SET = 100  # fewer cases: k-fold cross-validation (data.fold picks the test fold)
FOLDS = 5
HOLDOUT = 0.15  # validation (and, for large sets, test) fraction
MIN_CASES = 10
SPLITS = ("train", "val", "test")

SPLIT_RECORD_SCHEMA = "openmia.splits/1"  # the layout of splits.json


@dataclass(frozen=True)
class SplitPlan:
    """Case ids per split (each sorted), how they were made, and the number of folds (0 = fixed)."""

    splits: Mapping[str, tuple[str, ...]]
    rule: str
    folds: int = 0


def _holdout(ids: list[str], strata: list[int] | None, n_out: int, seed: int, where: str) -> tuple[list[str], list[str]]:
    """``(rest, held_out)`` with ``n_out`` cases held out, stratified when ``strata`` is given."""
    from sklearn.model_selection import train_test_split

    if strata is not None:
        n_out = max(n_out, len(set(strata)))
    if not 0 < n_out < len(ids):
        raise DataError(f"{where}: {len(ids)} case(s) cannot be split into {len(ids) - n_out} / {n_out}; add cases or "
                        "give a split.json")
    try:
        rest, out = train_test_split(ids, test_size=n_out, random_state=seed, stratify=strata)
    except ValueError as exc:
        counts = dict(Counter(strata or []))
        raise DataError(f"{where}: cannot make a stratified split of {len(ids)} cases with class counts {counts} "
                        f"({exc}); every class needs at least 2 cases, or give a split.json") from None
    return list(rest), list(out)


def plan_splits(case_ids: Sequence[str], strata: Sequence[int] | None = None, *, seed: int = 0, fold: int = 0,
                given: Mapping[str, Sequence[str]] | None = None, given_by: str = "", where: str = "") -> SplitPlan:
    """Train / val / test case ids by the module's rule.

    Args:
        case_ids: every labelled case of the data set.
        strata: class index per case (single-label classification) to stratify by; None = no strata.
        seed: seeds every random choice (same seed -> same splits).
        fold: the test fold when the rule is k-fold (0..FOLDS-1); must be 0 otherwise.
        given: splits given by the data set (must hold ``test``; ``train``/``val`` optional: the
            rest of the cases is the training pool).
        given_by: what gave them, for the rule text (``"split.json"``, ``"imagesTs/labelsTs"``).
        where: the data set's name, for error messages.
    """
    order = sorted(range(len(case_ids)), key=lambda i: case_ids[i])
    ids = [case_ids[i] for i in order]
    st = [int(strata[i]) for i in order] if strata is not None else None
    label = dict(zip(ids, st)) if st is not None else None
    how = "stratified by class, " if st is not None else ""
    if given is not None and given.get("test"):
        test = list(given["test"])
        held = set(test) | set(given.get("val") or ())
        pool = list(given["train"]) if given.get("train") else [c for c in ids if c not in held]
        if given.get("val"):
            val, rule = list(given["val"]), f"train / val / test given by {given_by}"
        else:
            pool, val = _holdout(sorted(pool), [label[c] for c in sorted(pool)] if label else None,
                                 math.ceil(HOLDOUT * len(pool)), seed, where)
            rule = f"test given by {given_by}; validation = {HOLDOUT:.0%} of the rest ({how}seed {seed})"
        if fold:
            raise ConfigError(f"data.fold={fold}: {where} has a fixed test split ({given_by}); leave data.fold at 0")
        return SplitPlan({"train": tuple(sorted(pool)), "val": tuple(sorted(val)), "test": tuple(sorted(test))}, rule)
    n = len(ids)
    if n < MIN_CASES:
        raise DataError(f"{where}: {n} case(s); openmia needs at least {MIN_CASES} to make train / val / test splits "
                        "(add cases or give a split.json)")
    if n < SMALL_SET:
        if not 0 <= fold < FOLDS:
            raise ConfigError(f"data.fold={fold}: {where} is split into {FOLDS} folds; data.fold must be 0..{FOLDS - 1}")
        from sklearn.model_selection import KFold, StratifiedKFold

        if st is not None:
            small = {k: v for k, v in Counter(st).items() if v < FOLDS}
            if small:
                raise DataError(f"{where}: class(es) with fewer than {FOLDS} cases {small} (class index: cases); "
                                f"stratified {FOLDS}-fold cross-validation needs {FOLDS} per class. Add cases or give a "
                                "split.json")
            folds = StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(ids, st)
        else:
            folds = KFold(FOLDS, shuffle=True, random_state=seed).split(ids)
        rest_idx, test_idx = list(folds)[fold]
        pool = [ids[i] for i in rest_idx]
        pool, val = _holdout(pool, [st[i] for i in rest_idx] if st else None, math.ceil(HOLDOUT * len(pool)), seed, where)
        test = [ids[i] for i in test_idx]
        rule = (f"{FOLDS}-fold cross-validation ({n} < {SMALL_SET} cases), {how}seed {seed}: test = fold {fold}, "
                f"validation = {HOLDOUT:.0%} of the other folds")
        return SplitPlan({"train": tuple(sorted(pool)), "val": tuple(sorted(val)), "test": tuple(sorted(test))}, rule, FOLDS)
    if fold:
        raise ConfigError(f"data.fold={fold}: {where} has one split ({n} >= {SMALL_SET} cases); leave data.fold at 0")
    n_out = round(HOLDOUT * n)
    rest, test = _holdout(ids, st, n_out, seed, where)
    rest.sort()
    train, val = _holdout(rest, [label[c] for c in rest] if label else None, n_out, seed, where)
    rule = f"70 / 15 / 15 hold-out, {how}seed {seed}"
    return SplitPlan({"train": tuple(sorted(train)), "val": tuple(sorted(val)), "test": tuple(sorted(test))}, rule)


def read_split_file(path: Path, case_ids: Iterable[str]) -> dict[str, list[str]]:
    """The splits of a ``split.json``; ids may be written with a file suffix. Unknown ids, a case in
    two splits and a case in none are errors naming the file."""
    from openmia.data.readers.folder import read_json, split_name

    data = read_json(path)
    known = set(case_ids)
    bad_keys = sorted(set(data) - set(SPLITS))
    if bad_keys or "train" not in data or "test" not in data:
        raise DataError(f"{path}: expected keys 'train', 'test' and optionally 'val' (lists of case ids), found "
                        f"{sorted(data)}")
    out: dict[str, list[str]] = {}
    where_is: dict[str, str] = {}
    for split in SPLITS:
        if split not in data:
            continue
        ids = data[split]
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise DataError(f"{path}: {split!r} must be a list of case ids (strings)")
        fixed = []
        for i in ids:
            sn = split_name(Path(i))
            cid = i if i in known or sn is None else i[: -len(sn[1])]
            if cid not in known:
                raise DataError(f"{path}: {split} lists {i!r}, which is not a case of the data set (case ids look like "
                                f"{sorted(known)[:3]})")
            if cid in where_is:
                raise DataError(f"{path}: case {cid!r} is in both {where_is[cid]} and {split}")
            where_is[cid] = split
            fixed.append(cid)
        out[split] = fixed
    unlisted = sorted(known - set(where_is))
    if unlisted:
        raise DataError(f"{path}: {len(unlisted)} case(s) are in no split, e.g. {unlisted[:3]}; list every case")
    if not out["train"] or not out["test"]:
        raise DataError(f"{path}: 'train' and 'test' must not be empty")
    return out


def fingerprint(root: Path) -> str:
    """A cheap identity of a folder's (or file's) content: names, sizes and modification times of
    every file below it. Changes when a file is added, removed or rewritten."""
    h = hashlib.sha1()
    if root.is_file():
        st = root.stat()
        h.update(f"{root.name}\0{st.st_size}\0{st.st_mtime_ns}".encode())
        return h.hexdigest()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for f in sorted(filenames):
            p = os.path.join(dirpath, f)
            try:
                st = os.stat(p)
            except OSError:
                continue
            h.update(f"{os.path.relpath(p, root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@lru_cache(maxsize=16)
def _files_sha256(root: str, files: tuple[str, ...], stamp: str) -> str:
    h = hashlib.sha256()
    for rel in files:
        h.update(f"{rel}\0{_file_sha256(Path(root) / rel)}\n".encode())
    return h.hexdigest()


def files_sha256(root: Path, files: Iterable[Path], stamp: str = "") -> str:
    """SHA-256 over the data files (relative path + each file's SHA-256, sorted by path), so it does
    not depend on where the folder lives; cached per ``stamp`` (the folder's fingerprint)."""
    base = root if root.is_dir() else root.parent
    rels = tuple(sorted({Path(os.path.relpath(p, base)).as_posix() for p in files}))
    return _files_sha256(str(base), rels, stamp)
