#!/usr/bin/env bash
# Download, on a machine with package-registry access, the pure-python wheels that the GPU machine
# lacks (Python 3.12; the optional packages of tests/engine/test_cuda.py) into ./wheels, for
# benchmarks/device_check.sh to install there offline. wheels/ is git-ignored: carry it to the
# device explicitly. Versions: those the tests were checked with in this repository's venv.
#
#     bash benchmarks/device_wheels.sh
set -euo pipefail

cd "$(dirname "$0")/.."
if [ -x .venv/bin/pip ]; then PIP=(.venv/bin/pip); else PIP=(python3 -m pip); fi
mkdir -p wheels
"${PIP[@]}" download --disable-pip-version-check --only-binary=:all: --python-version 3.12 \
    --platform manylinux2014_x86_64 --no-deps -d wheels \
    nibabel==5.4.2 gymnasium==1.4.0 farama-notifications==0.0.6 stable-baselines3==2.9.2 cloudpickle==3.1.3
ls -l wheels
