#!/usr/bin/env bash
# Everything the lab checks and times on a GPU, in one go (docs/gpu.md): the whole test suite on CUDA (Triton
# kernels compiled, not interpreted), the rate-sweep benchmark, the constructions on the GPU kernels, and the
# CLI's commands with --device cuda.
# Run from the repository root. On a machine without network access, wheels of missing packages (pywavelets)
# placed in .whl/ are installed first. Logs go to $OUT (default ./out).
set -uo pipefail
OUT=${OUT:-out}
mkdir -p "$OUT"
source benchmarks/gpu_env.sh
approx() { python3 -m cli.main "$@"; }
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c 'import torch, triton, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "triton", triton.__version__)'
} > "$OUT/device.txt" 2>&1
timeout 240 python3 -m pytest -q -p no:cacheprovider tests > "$OUT/tests-cuda.txt" 2>&1
echo "pytest exit $?" >> "$OUT/tests-cuda.txt"
{
  timeout 150 python3 benchmarks/rates.py --json "$OUT/rates.json"
  echo "rates exit $?"
} > "$OUT/rates.txt" 2>&1
{
  timeout 150 python3 benchmarks/constructions_gpu.py --json "$OUT/constructions.json"
  echo "constructions exit $?"
} > "$OUT/constructions.txt" 2>&1
{
  set -x
  approx fit --signal piecewise --m 3 --basis mamba --device cuda
  approx fit --signal piecewise --m 3 --basis mamba --strategy heaviside --n 4 --device cuda
  approx fit --signal piecewise --m 3 --basis s4d --strategy fourier --n 32 --device cuda
  approx construct mqar --kappa 8 --samples 10000 --device cuda
  approx construct induction --vocab 40 --hard --samples 10000 --device cuda
  approx construct keep-nth --samples 10000 --device cuda
  approx sensitivity --layer s6 --device cuda
  time approx rates --m 1 2 3 5 --basis s4d mamba haar fourier --n-max 64 --trials 100 --device cuda --store "$OUT/runs.sqlite"
} > "$OUT/cli-cuda.txt" 2>&1
tail -n 3 "$OUT/tests-cuda.txt" "$OUT/rates.txt" "$OUT/constructions.txt"
