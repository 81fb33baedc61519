#!/usr/bin/env bash
# The training stage on one GPU in a single call of under 10 minutes. Run from the repository root:
#
#     OUT=results bash benchmarks/train_gpu.sh STORE_DIR
#
#   1. benchmarks/train.py: the training throughput of 64 Mamba+PE members (d = 32, N = 8, T = 50, batch 16),
#      eager, CUDA-graphed and per member, after verifying the step (≤ 2 minutes);
#   2. the trainer's GPU test (groups on their own CUDA streams end as alone) and benchmarks/train_groups.py:
#      8 five-member INDUCTION HEADS groups trained one after the other and 2, 4, 8 at a time (≤ 2 minutes);
#   3. approx reproduce table1 with the budget recipe (docs/training.md), its runs in STORE_DIR/runs.sqlite,
#      checkpointed every 60 s and stopped by SIGINT after 5 minutes (a checkpoint is written on the way out).
#      A second call with the same STORE_DIR resumes: finished runs are read back, a run in progress continues
#      from its checkpoint. Carry STORE_DIR between calls.
# Logs go to $OUT (default ./out). Carried wheels in .whl/ (pywavelets) are installed first.
set -uo pipefail
STORE_DIR=${1:?usage: OUT=dir bash benchmarks/train_gpu.sh STORE_DIR}
OUT=${OUT:-out}
mkdir -p "$OUT" "$STORE_DIR"
source benchmarks/gpu_env.sh
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c 'import torch, triton, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "triton", triton.__version__)'
} > "$OUT/train-device.txt" 2>&1
timeout 120 python3 benchmarks/train.py --json "$OUT/train-bench.json" > "$OUT/train-bench.txt" 2>&1
echo "benchmark exit $?" >> "$OUT/train-bench.txt"
timeout 60 python3 -m pytest -q -p no:cacheprovider tests/test_train_resume.py -k cuda > "$OUT/train-tests.txt" 2>&1
echo "pytest exit $?" >> "$OUT/train-tests.txt"
timeout 120 python3 benchmarks/train_groups.py --json "$OUT/train-groups.json" > "$OUT/train-groups.txt" 2>&1
echo "benchmark exit $?" >> "$OUT/train-groups.txt"
timeout --signal=INT --kill-after=45 300 python3 -m cli.main reproduce table1 --device cuda --no-progress \
  --store "$STORE_DIR/runs.sqlite" --checkpoint-every 60 > "$OUT/table1.txt" 2>&1
echo "reproduce exit $? (130 or 124: stopped by the time limit; call again to resume)" >> "$OUT/table1.txt"
cat "$OUT/train-device.txt" "$OUT/train-bench.txt" "$OUT/train-tests.txt" "$OUT/train-groups.txt" "$OUT/table1.txt"
