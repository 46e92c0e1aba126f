#!/usr/bin/env bash
# The GPU check of the torch engine, from a clean checkout, on a machine that has a CUDA build of
# torch (and numba, scipy, pyarrow, tqdm, threadpoolctl, pytest) but no package registry:
#
#     bash benchmarks/gpu_check.sh            # about 8 minutes on one H200
#
# 1. installs factorise without its dependencies (--no-deps; the machine's own packages are used);
# 2. runs the torch-engine and gd tests on the GPU (FACTORISE_TEST_DEVICE=cuda);
# 3. times the torch engine on the GPU beside the numba engine on the same machine's CPU cores
#    (benchmarks/gpu.py: ALS and SGD per epoch on 10M planted ratings and the Netflix shape,
#    held-out RMSE for each, and gd_factorise_masked on the lab's shape and a 100x larger one).
# Output is mirrored into ${OUT:-.}/gpu_check.log.
set -uo pipefail
cd "$(dirname "$0")/.."
log="${OUT:-.}/gpu_check.log"
export PYTHONUNBUFFERED=1
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"
  python3 -c 'import torch, numba, numpy, scipy; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available(), "numba", numba.__version__, "numpy", numpy.__version__)'
  python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -2 || true
  python3 -c 'import factorise' 2>/dev/null || export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
  echo "== tests on cuda"
  FACTORISE_TEST_DEVICE=cuda timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_torch_engine.py tests/test_gd.py
  echo "== benchmarks/gpu.py"
  timeout 330 python3 benchmarks/gpu.py --device cuda --epochs 3
} 2>&1 | tee "$log"
