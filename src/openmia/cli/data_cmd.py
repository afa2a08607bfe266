"""openmia data list|info|fetch|import|verify."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("data", help="list, describe, fetch, import and verify data sets")
    ds = p.add_subparsers(dest="data_command", metavar="{list,info,fetch,import,verify}", required=True)
    lp = ds.add_parser("list", help="the catalogue, with what is in the cache")
    lp.add_argument("--task", help="only this task family")
    ip = ds.add_parser("info", help="all facts about one data set (a catalogue name or folder:PATH, msd:PATH, ...)")
    ip.add_argument("name")
    ip.add_argument("--size", type=int)
    ip.add_argument("--spacing", type=float, nargs="+", metavar="MM", help="target voxel spacing (NIfTI user sets)")
    fp = ds.add_parser("fetch", help="download into OPENMIA_HOME and verify the MD5")
    fp.add_argument("name")
    fp.add_argument("--size", type=int, help="size variant (28, 64, 128, 224)")
    fp.add_argument("--url", help="download from this URL instead (also: OPENMIA_DATA_MIRROR=<base url>)")
    mp = ds.add_parser("import", help="verify a local copy and install it into OPENMIA_HOME")
    mp.add_argument("name")
    mp.add_argument("file")
    mp.add_argument("--size", type=int)
    vp = ds.add_parser("verify", help="check checksum, shapes, labels, NaNs and duplicates (reports every problem)")
    vp.add_argument("name", help="a catalogue name, or your data: folder:PATH, msd:PATH, nnunet:PATH, coco:PATH, "
                                 "voc:PATH, dots:PATH (docs/data.md)")
    vp.add_argument("--size", type=int)
    vp.add_argument("--spacing", type=float, nargs="+", metavar="MM", help="target voxel spacing (NIfTI user sets)")
    vp.add_argument("--root", help="folder holding the file (default OPENMIA_HOME/medmnist)")


def run(args: argparse.Namespace) -> int:
    from openmia import api
    from openmia.cli._common import format_table

    cmd = args.data_command
    if cmd == "list":
        rows = []
        for s in api.list_datasets(task=args.task):
            if s.source == "medmnist":
                sizes = "/".join(str(x) for x in sorted(_sizes(s.name)))
                present = "yes" if api.dataset_file(s).is_file() else "no"
            elif s.source == "synthetic":
                sizes, present = str(s.size), "generated"
            else:  # a local folder (data.root)
                from openmia.data.paths import openmia_home

                folder = s.name if s.source == "msd" else s.source
                sizes = (f"{s.shape[1]}x{s.shape[0]} (resized)" if s.shape and s.task in ("detection", "counting")
                         else f"{'x'.join(map(str, s.shape))} (padded)" if s.shape else f"{s.size} (resized)")
                present = "yes" if (openmia_home() / folder).is_dir() else "local folder"
            n = "/".join(str(v) for _, v in s.split_sizes)
            rows.append([s.name, s.task_type, f"{s.dims}D", sizes, n, s.licence, present])
        print(format_table(["name", "task type", "dims", "sizes", "train/val/test", "licence", "in cache"], rows))
        from openmia.data.sources import prefixes

        print(f"\nyour own data: {', '.join(p + ':PATH' for p in prefixes())} (see docs/data.md)")
        return 0
    if cmd == "info":
        s = api.describe_dataset(args.name, args.size, spacing=args.spacing)
        shape = (f"{s.shape[1]} x {s.shape[0]} px (width x height, resized)" if s.shape and s.task in ("detection", "counting")
                 else f"{' x '.join(map(str, s.shape))} voxels (padded)" if s.shape else f"{s.size} px")
        print(f"name          {s.name}\ntask type     {s.task_type}\ndims          {s.dims}D, {s.channels} channel(s), {shape}")
        if s.spacing:
            print(f"spacing       {' x '.join(f'{v:g}' for v in s.spacing)} mm")
        if s.source == "user":
            print(f"split rule    {api.split_record(args.name, size=args.size, checksum=False)['rule']}")
        elif s.folds and s.task == "counting":  # the VGG cells protocol: folds are draws of the training images
            print(f"draws         {s.folds} (data.fold=k: training images drawn with seed k)")
        elif s.folds:
            print(f"folds         {s.folds} (data.fold=k tests the cases whose sorted index % {s.folds} == k)")
        print(f"classes       {', '.join(f'{i}={n}' for i, n in enumerate(s.label_names))}")
        print(f"splits        {', '.join(f'{k} {v}' for k, v in s.split_sizes)}")
        print(f"normalisation {s.normalization.value}\nlicence       {s.licence}\nsource        {s.description}")
        if s.md5:
            path = api.dataset_file(s)
            print(f"url           {s.url}\nmd5           {s.md5}\nfile          {path} ({'present' if path.is_file() else 'not downloaded'})")
        print(f"citation      {s.citation}")
        return 0
    if cmd == "fetch":
        path = api.fetch_data(args.name, size=args.size, url=args.url, progress=not args.quiet)
        print(f"{path} (MD5 verified)")
        return 0
    if cmd == "import":
        path = api.import_data(args.name, args.file, size=args.size)
        print(f"{path} (MD5 verified)")
        return 0
    rep = api.verify_data(args.name, size=args.size, root=args.root, spacing=args.spacing)
    for c in rep.checks:
        print(f"ok       {c}")
    for w in rep.warnings:
        print(f"warning  {w}")
    for p in rep.problems:
        print(f"PROBLEM  {p}")
    print(f"{rep.name}: {'OK' if rep.ok else f'{len(rep.problems)} problem(s)'}, {len(rep.warnings)} warning(s)")
    return 0 if rep.ok else 1


def _sizes(name: str) -> list[int]:
    from openmia.data.medmnist import FACTS

    return sorted(FACTS[name].md5)
