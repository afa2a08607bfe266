#!/usr/bin/env bash
# The GPU checks of openmia's device code, as one script for a lent GPU machine.
#
# Run from the repository root with $OUT set to an output folder; wheels/ holds the optional
# pure-python packages the machine lacks (made by benchmarks/device_wheels.sh on a machine with
# registry access, carried over because *.whl files are git-ignored):
#
#     OUT=/some/folder bash benchmarks/device_check.sh
#
# Steps: nvidia-smi and the python/torch/CUDA versions; the wheels installed (no index, no
# dependencies; into a private folder on PYTHONPATH if the system pip refuses); the CUDA tests
# (tests/engine/test_cuda.py, `-m cuda`) -> $OUT/cuda_tests.log (+ cuda_tests.xml); the bf16-vs-fp32
# training-step timings on the GPU (benchmarks/precision_speed.py --device cuda) ->
# $OUT/precision_speed/precision_speed.{md,json} and $OUT/precision_speed.log (never into
# benchmarks/results). Ends with one summary line of exit codes; exits non-zero if a step failed.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 2
: "${OUT:?set OUT to an output folder}"
mkdir -p "$OUT" || exit 2

# time limits (seconds) that leave the whole script under the device tool's 10-minute call limit
TESTS_LIMIT=${TESTS_LIMIT:-330}
SPEED_LIMIT=${SPEED_LIMIT:-180}

echo "== nvidia-smi"
nvidia-smi 2>&1
smi_rc=$?

echo "== python / torch"
python3 --version 2>&1
python3 - <<'EOF' 2>&1
import torch
print("torch", torch.__version__, "| CUDA", torch.version.cuda, "| cuDNN", torch.backends.cudnn.version(),
      "| available", torch.cuda.is_available(), "| devices",
      [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])
if torch.cuda.is_available():
    print("bf16 supported:", torch.cuda.is_bf16_supported(), "| capability", torch.cuda.get_device_capability(0),
          "| cudnn.allow_tf32", torch.backends.cudnn.allow_tf32, "| matmul.allow_tf32", torch.backends.cuda.matmul.allow_tf32)
EOF

echo "== optional wheels"
pip_rc=0
SITE=""
shopt -s nullglob
wheels=(wheels/*.whl)
shopt -u nullglob
if [ ${#wheels[@]} -gt 0 ]; then
    printf '  %s\n' "${wheels[@]}"
    python3 -m pip install -q --disable-pip-version-check --no-index --find-links wheels --no-deps "${wheels[@]}" 2>&1
    pip_rc=$?
    if [ $pip_rc -ne 0 ]; then  # e.g. an externally managed system python: install beside it instead
        SITE=$(mktemp -d /tmp/openmia-device-site.XXXXXX)
        echo "(pip install into the environment failed with $pip_rc; installing into $SITE instead)"
        python3 -m pip install -q --disable-pip-version-check --no-index --find-links wheels --no-deps \
            --target "$SITE" "${wheels[@]}" 2>&1
        pip_rc=$?
    fi
else
    echo "(no wheels/*.whl: the tests that need nibabel / gymnasium / stable-baselines3 will skip)"
fi

export PYTHONPATH="src${SITE:+:$SITE}${PYTHONPATH:+:$PYTHONPATH}"
python3 - <<'EOF' 2>&1
import importlib
for name in ("openmia", "nibabel", "gymnasium", "stable_baselines3", "cloudpickle"):
    try:
        mod = importlib.import_module(name)
        print(f"  {name:18s} {getattr(mod, '__version__', '?'):10s} {getattr(mod, '__file__', '')}")
    except Exception as exc:  # noqa: BLE001 - report any import failure
        print(f"  {name:18s} NOT IMPORTABLE ({type(exc).__name__}: {exc})")
EOF

echo "== CUDA tests (tests/engine/test_cuda.py, -m cuda; limit ${TESTS_LIMIT}s)"
timeout -k 10 "$TESTS_LIMIT" python3 -m pytest -q -m cuda tests/engine/test_cuda.py -rs -p no:cacheprovider \
    --durations=15 --junitxml="$OUT/cuda_tests.xml" 2>&1 | tee "$OUT/cuda_tests.log"
tests_rc=${PIPESTATUS[0]}

echo "== precision_speed --device cuda (limit ${SPEED_LIMIT}s)"
timeout -k 10 "$SPEED_LIMIT" python3 benchmarks/precision_speed.py --device cuda --rounds 5 --steps 20 \
    --out "$OUT/precision_speed" 2>&1 | tee "$OUT/precision_speed.log"
speed_rc=${PIPESTATUS[0]}

summary="device_check: nvidia-smi=$smi_rc pip=$pip_rc cuda_tests=$tests_rc precision_speed=$speed_rc (124 = timed out)"
echo "$summary" | tee "$OUT/summary.txt"
[ $tests_rc -eq 0 ] && [ $speed_rc -eq 0 ] && [ $pip_rc -eq 0 ]
