"""Regenerate the command outputs shown in README.md, or check them for drift (issue 21, fault 17).

    python docs/readme_outputs.py --check              # exit 1 and a diff per block that drifted
    python docs/readme_outputs.py --write              # rewrite the blocks that drifted in README.md
    python docs/readme_outputs.py --check --cheap      # only the blocks without training (seconds)
    python docs/readme_outputs.py --write --only count # one block (and what it depends on)
    python docs/readme_outputs.py --list               # the blocks, and whether each is cheap

A generated block in README.md is a fenced ``text`` block between two HTML comments:

    <!-- output: reference -->
    ```text
    $ openmia list models
    ...
    ```
    <!-- /output -->

Everything between the comments is this script's: the ``$`` lines (the commands, with the run
directories they really made) and the output. Each command runs for real, in a fresh temporary
folder that plays the user's clone of openmia (``examples/`` scripts are run from this checkout),
with ``OPENMIA_HOME`` in that folder too: nothing is downloaded and the user's run index is never
touched. Commands of independent chains run two at a time (every training uses one thread, so two
fit on 2 cores); the whole tour takes two to three minutes there, the cheap blocks seconds.

Reproducibility: every training is ``--deterministic`` with ``train.threads=1``, so its metrics are
bit-identical from run to run (on another CPU, torch's kernels may round differently: the trainings
are checked by the slow test, the cheap blocks by the default suite). What still varies is
normalised away before comparing (``normalise``): timings, run-directory time stamps, the git
commit, versions, memory, the temporary folder (shown as ``/home/you/openmia``), runs of spaces in
tables, and the version ``openmia env`` prints. ``--write`` leaves a block alone when only such
parts differ (``--force`` rewrites it).

Only standard output is shown, except where a step says otherwise (error messages and the
``interrupted`` of a Ctrl-C are on standard error); progress bars go to standard error.
"""

from __future__ import annotations

import argparse
import difflib
import glob
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
SHOWN_CLONE = "/home/you/openmia"  # how the temporary folder (the user's clone) is shown
SHOWN_HOME = "/home/you/.cache/openmia"  # how the temporary OPENMIA_HOME is shown
STEP_TIMEOUT = 600  # seconds; a step that takes longer is an error

# the deterministic settings of every training in the tour
DET = "--deterministic --set train.threads=1"


# --- shortening what a block shows -------------------------------------------------------------

Keep = Callable[[list[str]], list[str]]


def head(n: int) -> Keep:
    """The first ``n`` lines, then ``...`` if any were left out."""
    return lambda lines: lines[:n] + (["..."] if len(lines) > n else [])


def sections(*starts: str, first: int = 0, last: int = 0) -> Keep:
    """The first ``first`` lines, each section beginning with a line equal to one of ``starts``
    (up to the next blank line), and the last ``last`` lines; ``...`` where lines were left out."""
    def keep(lines: list[str]) -> list[str]:
        chosen: set[int] = set(range(min(first, len(lines))))
        chosen |= set(range(max(0, len(lines) - last), len(lines)))
        for i, line in enumerate(lines):
            if line in starts:
                j = i
                while j < len(lines) and lines[j].strip():
                    chosen.add(j)
                    j += 1
        out, prev = [], -1
        for i in sorted(chosen):
            if i != prev + 1:
                out.append("...")
            out.append(lines[i])
            prev = i
        if prev != len(lines) - 1:
            out.append("...")
        return out
    return keep


def matching(*patterns: str) -> Keep:
    """Lines matching one of the regular expressions, with ``...`` for runs of lines left out."""
    def keep(lines: list[str]) -> list[str]:
        out: list[str] = []
        for line in lines:
            if any(re.search(p, line) for p in patterns):
                out.append(line)
            elif not out or out[-1] != "...":
                out.append("...")
        return out
    return keep


def drop(*patterns: str) -> Keep:
    """Every line but those matching one of the regular expressions (rows of a table left out
    without a mark: the table's other rows show it is shortened)."""
    return lambda lines: [line for line in lines if not any(re.search(p, line) for p in patterns)]


def then(*keeps: Keep) -> Keep:
    """The shortenings one after the other."""
    def keep(lines: list[str]) -> list[str]:
        for k in keeps:
            lines = k(lines)
        return lines
    return keep


# --- the tour ----------------------------------------------------------------------------------

@dataclass
class Step:
    """One command of the tour.

    ``command`` is shown after ``$`` (``{name}`` fields are filled from earlier steps' ``capture``);
    ``stdin`` is fed to it and shown as a here-document; ``stderr`` shows standard error too;
    ``interrupt`` = (glob of a run's metrics.jsonl, epochs): press Ctrl-C (SIGINT) once that many
    epochs are written, as a user would; ``capture`` = {name: regex with one group} read from the
    output; ``keep`` shortens the output shown; ``expect_rc`` is the exit status it must end with.
    """

    command: str
    stdin: str | None = None
    stderr: bool = False
    interrupt: tuple[str, int] | None = None
    capture: dict[str, str] = field(default_factory=dict)
    keep: Keep | None = None
    expect_rc: int = 0


@dataclass
class Block:
    name: str
    steps: list[Step]
    cheap: bool = False  # deterministic and quick: the default test suite checks it
    volatile: list[tuple[str, str]] = field(default_factory=list)  # extra (regex, replacement) for the check


RUN = r"^run directory: (\S+)"


def first_row(lines: list[str]) -> list[str]:
    """A comparison's header and first row, and its last line (what it wrote)."""
    return lines[:3] + ["...", lines[-1]] if len(lines) > 4 else lines


CHAINS: list[list[Block]] = [
    [  # your own data: a folder data set, training with a Ctrl-C and a resume, re-evaluation, predict, the index
        Block("byod", [
            Step("python examples/make_folder_dataset.py mydata"),
            Step("openmia train --task segmentation --dataset folder:mydata/lesions --epochs 20 "
                 f"--set optim.lr=3e-3 --set data.batch_size=8 --set data.augment=flip {DET}",
                 stderr=True, interrupt=("runs/*-mydata-lesions-unet_small-s0/metrics.jsonl", 4),
                 capture={"lesion_run": r"^(runs/\S+)$"}, expect_rc=130),
            Step("openmia train --resume {lesion_run}", capture={"lesion_run": RUN}, keep=drop(r"^(iou|hd95|assd|nsd) ")),
            Step("openmia reevaluate {lesion_run} --out runs/lesions-tta --set segmentation.tta=true",
                 keep=matching(r"^dice ", r"^run directory")),
        ], volatile=[(r"(?m)^(\S.* \d+ \d+) \d+(\.\d+)?(?= |$)", r"\1 T")]),  # runs list: 'train s' after seed, epochs
    ],
    [  # the quickstart, then label-free clustering of its model's features
        Block("quickstart", [Step("openmia quickstart --set train.threads=1 --set train.deterministic=true",
                                  capture={"quick_run": r"^run directory: (\S+)"},
                                  keep=drop(r"^(balanced_acc|f1|sensitivity|specificity|ece|brier) "))]),
        Block("families", [
            Step("openmia embed --model {quick_run} --split test --out emb"),
            Step("openmia cluster --embeddings emb --k auto --out clusters", keep=drop(r"^  (ami|nmi) ")),
            Step("openmia train --task inpainting --epochs 3 --set model.kwargs.width=8 " + DET,
                 capture={"inpaint_run": RUN}, keep=matching(r"^psnr_mask ", r"^run directory")),
            Step("openmia inpaint --method biharmonic --input {inpaint_run}/inputs/test "
                 "--mask {inpaint_run}/masks/test --out biharmonic"),
            Step("openmia compare --task inpainting --truth {inpaint_run}/truth/test --masks {inpaint_run}/masks/test "
                 "--data-range 1 --pred net={inpaint_run}/predictions/test --pred biharmonic=biharmonic "
                 "--metrics psnr_mask --out cmp_inpaint", keep=lambda lines: lines[:3]),
        ]),
    ],
    [  # counting: train on the embedded cells, count two of its test images
        Block("count", [
            Step("python examples/make_cell_images.py cells"),
            Step("openmia train --task counting --epochs 6 --set counting.crop=64 --set model.kwargs.width=8 "
                 f"--set data.batch_size=16 --set optim.lr=3e-3 {DET}", capture={"cells_run": RUN},
                 keep=matching(r"^mae ", r"^run directory")),
            Step("openmia count --model {cells_run} cells/cells0.png cells/cells1.png --out counted"),
        ]),
    ],
    [  # reference commands: cheap and deterministic (the default test suite checks these)
        Block("reference", [
            Step("openmia list tasks"),
            Step("openmia train --set eval.tta=true", stderr=True, expect_rc=2),
        ], cheap=True, volatile=[(r"(?m)^openmia +\d\S*$", "openmia V")]),  # env's version line
        Block("evaluate", [
            Step("python examples/make_segmentation_example.py segex"),
            Step("openmia evaluate --task segmentation --pred segex/model_a --truth segex/truth --out segex/eval_a "
                 "--nsd-tolerance 1=1.0,2=1.0,3=2.0",
                 keep=then(sections("label all", first=1, last=1), drop(r"^(iou|assd) "))),
            Step("openmia compare --task segmentation --truth segex/truth --pred a=segex/model_a --pred b=segex/model_b "
                 "--metrics dice,hd95 --out segex/cmp", keep=lambda lines: lines[:4] + ["...", lines[-1]]),
        ], cheap=True),
        Block("study", [
            Step("openmia plan auc --auc 0.85 --half-width 0.05 --prevalence 0.3", keep=lambda lines: ["..."] + lines[-1:]),
            Step("openmia rank --scores examples/medmnist2d_published_auc.csv --control 'ResNet-18 (28)' --out rank_mm",
                 keep=lambda lines: lines[:5] + ["..."] + [x for x in lines if x.startswith("Friedman")] + lines[-1:]),
        ], cheap=True),
    ],
]
BLOCKS = {b.name: b for chain in CHAINS for b in chain}


# --- running -----------------------------------------------------------------------------------

class StepError(RuntimeError):
    """A tour command failed (or did not fail as it should)."""


def argv_of(command: str) -> list[str]:
    """The argv that runs ``command`` here: ``openmia`` and ``python`` are this interpreter's,
    ``examples/...`` scripts are this checkout's."""
    words = shlex.split(command)
    if words[0] == "openmia":
        words[:1] = [sys.executable, "-m", "openmia"]
    elif words[0] == "python":
        words[0] = sys.executable
    return [str(REPO / w) if w.startswith("examples/") else w for w in words]


def shown(text: str, work: Path, home: Path) -> str:
    """Output as the README shows it: the temporary folders as a user's, no trailing blanks."""
    text = text.replace(str(home), SHOWN_HOME).replace(str(work), SHOWN_CLONE)
    lines: list[str] = []
    for line in text.splitlines():
        line = line.rstrip()
        if line or (lines and lines[-1]):  # no leading or repeated blank lines
            lines.append(line)
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def run_step(step: Step, values: dict[str, str], work: Path, env: dict[str, str]) -> tuple[str, str]:
    """Run one step; returns the command as run (fields filled in) and the output it shows."""
    command = step.command.format(**values)
    proc = subprocess.Popen(argv_of(command), cwd=work, env=env, text=True,
                            stdin=subprocess.DEVNULL if step.stdin is None else subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = _finish(proc, step, work, command)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise StepError(f"{command}: still running after {STEP_TIMEOUT} s (killed)") from None
    if proc.returncode != step.expect_rc:
        raise StepError(f"{command}: exit status {proc.returncode}, expected {step.expect_rc}\n"
                        f"--- stdout\n{out[-3000:]}\n--- stderr\n{err[-3000:]}")
    text = out + (err if step.stderr else "")
    for name, regex in step.capture.items():
        m = re.search(regex, text, re.M)
        if m is None:
            raise StepError(f"{command}: no match for {regex!r} in its output:\n{text[-3000:]}")
        values[name] = m.group(1)
    if step.interrupt is not None:  # the run directory's line was only there to be captured
        text = "\n".join(text.splitlines()[:-1])
    return command, text


def _finish(proc: subprocess.Popen, step: Step, work: Path, command: str) -> tuple[str, str]:
    """Wait for ``proc`` (pressing Ctrl-C first for an ``interrupt`` step); its stdout and stderr.
    An interrupted step's stdout is what the terminal shows (``^C``, the output, ``interrupted``)
    and the run directory on a last line, for ``capture``."""
    if step.interrupt is None:
        return proc.communicate(step.stdin, timeout=STEP_TIMEOUT)
    pattern, epochs = step.interrupt
    deadline = time.monotonic() + STEP_TIMEOUT
    run_dir = None
    while proc.poll() is None and time.monotonic() < deadline:
        found = glob.glob(str(work / pattern))
        if found and len(Path(found[0]).read_text().splitlines()) >= epochs:
            run_dir = Path(found[0]).parent
            proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
            break
        time.sleep(0.1)
    out, err = proc.communicate(timeout=STEP_TIMEOUT)
    if run_dir is None:
        raise StepError(f"{command}: ended before {epochs} epochs were written (rc {proc.returncode})\n{err[-2000:]}")
    return "\n".join(p for p in ("^C", out.strip(), err.strip(), str(run_dir.relative_to(work))) if p), ""


def render_step(command: str, stdin: str | None, output: str, keep: Keep | None) -> str:
    lines = output.splitlines()
    if keep is not None:
        lines = keep(lines)
    head_ = f"$ {command}"
    if stdin is not None:
        head_ += " <<'EOF'\n" + stdin.rstrip("\n") + "\nEOF"
    return "\n".join([head_, *lines]) if lines else head_


def run_chain(chain: list[Block], wanted: set[str], work: Path, env: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """Run a chain's blocks in order up to the last wanted one; returns ({block name: text}, errors).
    A failing step ends its chain; the other chains go on."""
    last = max((i for i, b in enumerate(chain) if b.name in wanted), default=-1)
    values: dict[str, str] = {}
    home = Path(env["OPENMIA_HOME"])
    texts: dict[str, str] = {}
    for block in chain[: last + 1]:
        t0 = time.monotonic()
        parts = []
        try:
            for step in block.steps:
                command, out = run_step(step, values, work, env)
                parts.append(render_step(shown(command, work, home), step.stdin, shown(out, work, home), step.keep))
        except (StepError, subprocess.TimeoutExpired, KeyError) as exc:
            msg = f"block {block.name}: {exc}"
            print(msg, file=sys.stderr, flush=True)
            return texts, [msg]
        texts[block.name] = "\n".join(parts)
        print(f"  {block.name}: {time.monotonic() - t0:.0f} s", file=sys.stderr, flush=True)
    return texts, []


def generate(wanted: set[str], workers: int = 2) -> tuple[dict[str, str], list[str]]:
    """Run the tour (only the chains, and the parts of them, that ``wanted`` needs); returns the
    blocks' texts and the errors of the chains that failed."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # started in the background: SIGINT is ignored, and children would inherit that and ignore
        # the tour's Ctrl-C; a handler here makes exec() give them the default disposition
        signal.signal(signal.SIGINT, signal.default_int_handler)
    # a folder whose path is as long as the one shown, so table columns stay aligned after the swap
    base = Path(tempfile.gettempdir()).resolve()
    prefix = "r" * max(1, len(SHOWN_CLONE) - len(str(base)) - 1 - 8)  # mkdtemp adds 8 characters
    with tempfile.TemporaryDirectory(prefix=prefix, dir=base) as tmp:
        work = Path(tmp).resolve()
        env = dict(os.environ, OPENMIA_HOME=str(work / ".openmia"), COLUMNS="200", PYTHONUNBUFFERED="1")
        env.pop("OPENMIA_DATA_MIRROR", None)
        chains = [c for c in CHAINS if any(b.name in wanted for b in c)]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(lambda c: run_chain(c, wanted, work, env), chains))
    texts: dict[str, str] = {}
    errors: list[str] = []
    for t, e in results:
        texts.update(t)
        errors += e
    return {k: v for k, v in texts.items() if k in wanted}, errors


# --- README blocks -----------------------------------------------------------------------------

BLOCK_RE = re.compile(r"(<!-- output: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /output -->)", re.S)
FENCE_RE = re.compile(r"^```text\n(?P<text>.*?)\n?```\n?$", re.S)


def readme_blocks(text: str) -> dict[str, str]:
    out = {}
    for m in BLOCK_RE.finditer(text):
        f = FENCE_RE.match(m.group("body"))
        out[m.group("name")] = f.group("text") if f else m.group("body")
    return out


def replace_blocks(text: str, texts: dict[str, str]) -> str:
    def sub(m: re.Match) -> str:
        name = m.group("name")
        if name not in texts:
            return m.group(0)
        return f"{m.group(1)}```text\n{texts[name]}\n```\n{m.group(4)}"
    return BLOCK_RE.sub(sub, text)


GLOBAL_VOLATILE = [
    (r"\d{8}-\d{6}", "YYYYMMDD-HHMMSS"),  # run-directory time stamps
    (r"\b\d+(\.\d+)? s\b", "T s"),  # timings ("training 11.3 s", "done in 51 s")
    (r"\b[0-9a-f]{40}(-dirty)?\b", "GIT"),  # commits
    (r"peak RSS \d+ MiB", "peak RSS M MiB"),
    (r"torch \d+\.\d+\.\d+\S*", "torch V"),
    (r"[ \t]+", " "),  # table column widths follow the widest (volatile) value
]


def normalise(name: str, text: str) -> str:
    """``text`` of block ``name`` with its volatile parts replaced, for comparing."""
    for regex, repl in GLOBAL_VOLATILE + BLOCKS[name].volatile:
        text = re.sub(regex, repl, text)
    return "\n".join(line.rstrip() for line in text.splitlines())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="exit 1 if a block's regenerated output differs")
    mode.add_argument("--write", action="store_true", help="replace the blocks in the README")
    mode.add_argument("--list", action="store_true", help="list the blocks")
    ap.add_argument("--only", help="comma-separated block names (default: all)")
    ap.add_argument("--cheap", action="store_true", help="only the cheap, deterministic blocks (seconds)")
    ap.add_argument("--force", action="store_true", help="--write: rewrite blocks that differ only in timings too")
    ap.add_argument("--readme", type=Path, default=README)
    ap.add_argument("--workers", type=int, default=2, help="chains run at once (default 2)")
    args = ap.parse_args(argv)

    if args.list:
        for chain in CHAINS:
            for b in chain:
                print(f"{b.name:18s} {'cheap' if b.cheap else ''}")
        return 0
    wanted = set(BLOCKS)
    if args.only:
        wanted = {w.strip() for w in args.only.split(",") if w.strip()}
        unknown = wanted - set(BLOCKS)
        if unknown:
            ap.error(f"unknown block(s) {', '.join(sorted(unknown))}; known: {', '.join(BLOCKS)}")
    if args.cheap:
        wanted = {n for n in wanted if BLOCKS[n].cheap}
    readme = args.readme.read_text()
    present = readme_blocks(readme)
    missing = sorted(wanted - set(present))
    orphans = sorted(set(present) - set(BLOCKS))
    if orphans:
        print(f"{args.readme}: block(s) this script does not generate: {', '.join(orphans)}", file=sys.stderr)
        return 1
    if missing and args.check:
        print(f"{args.readme}: block(s) missing: {', '.join(missing)}", file=sys.stderr)
        return 1

    t0 = time.monotonic()
    print(f"running {len(wanted)} block(s)...", file=sys.stderr, flush=True)
    texts, errors = generate(wanted, args.workers)
    print(f"done in {time.monotonic() - t0:.0f} s", file=sys.stderr)
    if errors:
        print(f"{len(errors)} chain(s) failed; nothing was written or checked:\n" + "\n".join(errors), file=sys.stderr)
        return 2
    if args.write:
        # a block whose output only differs in what varies (timings, stamps) is left as it is,
        # so the README does not churn; --force rewrites it anyway
        changed = {n: t for n, t in texts.items() if n not in missing and
                   (args.force or normalise(n, present[n]) != normalise(n, t))}
        args.readme.write_text(replace_blocks(readme, changed))
        skipped = f"; not in the README: {', '.join(missing)}" if missing else ""
        print(f"rewrote {len(changed)} block(s) in {args.readme} ({len(texts) - len(changed) - len(missing)} "
              f"unchanged but for timings{skipped})")
        return 0
    drifted = []
    for name in sorted(texts):
        a, b = normalise(name, present[name]), normalise(name, texts[name])
        if a != b:
            drifted.append(name)
            diff = difflib.unified_diff(a.splitlines(), b.splitlines(), f"README.md [{name}]", f"regenerated [{name}]",
                                        lineterm="")
            print("\n".join(diff))
    if drifted:
        print(f"README output drifted in {len(drifted)} block(s): {', '.join(drifted)} "
              f"(python docs/readme_outputs.py --write --only {','.join(drifted)} to update)", file=sys.stderr)
        return 1
    print(f"{len(texts)} block(s) match the commands' output")
    return 0


if __name__ == "__main__":
    sys.exit(main())
