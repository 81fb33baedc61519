#!/usr/bin/env bash
# The scan kernels on one GPU, in one go (docs/kernels.md): the kernel tests on CUDA (compiled, not interpreted),
# then benchmarks/scan.py --extra (the Gluon and Triton kernels against mamba_ssm's CUDA scan built in the same
# run), then the training throughput of benchmarks/train.py, which runs the grouped scan. The configuration sweep
# is its own command: python3 benchmarks/scan.py --sweep-only --sizes ...
#
#     OUT=results bash benchmarks/kernels_gpu.sh
#
# mamba_ssm's scan is built from a copy of its selective_scan sources in .peer/ (pkg/mamba_ssm/ops/
# selective_scan_interface.py builds them with torch.utils.cpp_extension on first import, about three minutes for
# sm_90); without .peer/ the benchmark runs without that peer and says so. Wheels of missing packages (pywavelets)
# in .whl/ are installed first. Logs go to $OUT (default ./out).
set -uo pipefail
OUT=${OUT:-out}
mkdir -p "$OUT"
source benchmarks/gpu_env.sh
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c 'import torch, triton, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "triton", triton.__version__)'
} > "$OUT/device.txt" 2>&1
if [ -d .peer/pkg ]; then
  export PYTHONPATH=$PYTHONPATH:.peer/pkg TORCH_CUDA_ARCH_LIST=9.0 SSM_BUILD_DIR=/tmp/ssmbuild
  mkdir -p "$SSM_BUILD_DIR"
  ( timeout 240 python3 -c 'import mamba_ssm.ops.selective_scan_interface' > "$OUT/peer-build.txt" 2>&1;
    echo "peer build exit $?" >> "$OUT/peer-build.txt" ) &
  build=$!
fi
timeout 170 python3 -m pytest -q -p no:cacheprovider tests/test_scan_gluon.py tests/test_scan_triton.py \
  tests/test_scan_reference.py \
  > "$OUT/kernel-tests.txt" 2>&1
echo "pytest exit $?" >> "$OUT/kernel-tests.txt"
[ -n "${build:-}" ] && wait "$build"
timeout 200 python3 benchmarks/scan.py --extra --methods gluon triton mamba_ssm --out "$OUT/scan.txt" \
  --sizes 16,64,16,128 16,64,32,1024 8,1024,16,2048 32,1024,16,4096 16,2048,8,50,64 16,9216,32,100,64 \
  > "$OUT/scan-log.txt" 2>&1
echo "scan benchmark exit $?" >> "$OUT/scan-log.txt"
timeout 120 python3 benchmarks/train.py --json "$OUT/train-bench.json" > "$OUT/train-bench.txt" 2>&1
echo "train benchmark exit $?" >> "$OUT/train-bench.txt"
tail -n 3 "$OUT/kernel-tests.txt" "$OUT/peer-build.txt" 2>/dev/null
cat "$OUT/scan.txt" "$OUT/train-bench.txt" 2>/dev/null
