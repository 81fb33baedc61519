#!/usr/bin/env bash
# Training sweeps on one GPU under a time limit, each sharded over PROCS processes that share the GPU (torchrun;
# a small ensemble leaves a GPU mostly idle, several keep it busy). Run from the repository root:
#
#     OUT=results bash benchmarks/sweeps_gpu.sh STORE_DIR [PROCS=4] [SECONDS=540] ['SWEEP' ...]
#
# A SWEEP is the arguments of one `approx` command that trains through the store, quoted as one word:
# 'reproduce table-a2 --lengths 50', 'reproduce fig3 --x 5 10 --d 4 8 16', 'mechanism table1 --lengths 128'.
# Default: the Tables A.1-A.4 ('reproduce table-a1' … 'reproduce table-a4'). The sweeps run in order, their runs
# in STORE_DIR/runs.sqlite, checkpointed every 60 s. At SECONDS after the start the sweep in progress is stopped by
# SIGINT (each process checkpoints on the way out) and the sweeps not begun are skipped; a second call with the
# same STORE_DIR resumes. Measured on an H100 with 4 processes: Table A.1 at T = 10 (21 groups of 3 members) in
# 295 s, at T = 20 in 354 s. Each sweep's report (<name>.txt, its stderr, sweeps-log.txt with the seconds each took)
# goes into $OUT/reports.tar.gz, the store gzipped and split into 15 MB parts to $OUT/store.gz.part-* (restore with
# `cat store.gz.part-* | gunzip > STORE_DIR/runs.sqlite`). Carried wheels in .whl/ (pywavelets) are installed
# first. STORE_MAX_MB=m ships a copy of the store without the weights and checkpoints over m MiB each (the records
# all stay; a group whose checkpoint is dropped starts again): a store holding large models may otherwise exceed what
# one call can bring back. Several calls may run side by side with different STORE_DIR and OUT; DEVICE=cpu tries a
# sweep on the CPU.
set -uo pipefail
STORE_DIR=${1:?usage: OUT=dir bash benchmarks/sweeps_gpu.sh STORE_DIR [PROCS] [SECONDS] ['SWEEP' ...]}
PROCS=${2:-4}
SECONDS_LEFT=${3:-540}
shift $(( $# < 3 ? $# : 3 ))
SWEEPS=("$@")
[ ${#SWEEPS[@]} -eq 0 ] && SWEEPS=("reproduce table-a1" "reproduce table-a3" "reproduce table-a2" "reproduce table-a4")
OUT=${OUT:-out}
LOGS=$(mktemp -d)
mkdir -p "$OUT" "$STORE_DIR"
source benchmarks/gpu_env.sh
export OMP_NUM_THREADS=1
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c 'import torch, triton, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "triton", triton.__version__)'
} > "$LOGS/sweeps-device.txt" 2>&1
deadline=$(( $(date +%s) + SECONDS_LEFT ))
name_of() { echo "$1" | tr -s ' ' '-' | tr -cd 'A-Za-z0-9.-' | sed 's/--*/-/g'; }
for sweep in "${SWEEPS[@]}"; do
  name=$(name_of "$sweep")
  left=$(( deadline - $(date +%s) ))
  if [ "$left" -le 10 ]; then
    echo "$sweep: not begun (time limit)" >> "$LOGS/sweeps-log.txt"
    continue
  fi
  begin=$(date +%s)
  # shellcheck disable=SC2086  # a sweep is several words on purpose
  timeout --signal=INT --kill-after=45 "$left" torchrun --standalone --nproc_per_node="$PROCS" -m cli.main -- \
    $sweep --device "${DEVICE:-cuda}" --no-progress --store "$STORE_DIR/runs.sqlite" --checkpoint-every 60 \
    > "$LOGS/$name.txt" 2> "$LOGS/$name-err.txt"
  echo "$sweep: exit $? after $(( $(date +%s) - begin )) s on $PROCS processes" >> "$LOGS/sweeps-log.txt"
done
SHIP="$STORE_DIR/runs.sqlite"
if [ -n "${STORE_MAX_MB:-}" ]; then
  SHIP="$LOGS/runs.sqlite"
  python3 -c 'import sys; from approx.store import Store
with Store(sys.argv[1]) as s: print("store shipped:", s.copy_to(sys.argv[2], max_blob_bytes=int(float(sys.argv[3]) * 2**20)))' \
    "$STORE_DIR/runs.sqlite" "$SHIP" "$STORE_MAX_MB" >> "$LOGS/sweeps-log.txt" 2>&1
fi
tar czf "$OUT/reports.tar.gz" -C "$LOGS" --exclude runs.sqlite .
gzip -c "$SHIP" | split -b 15000000 - "$OUT/store.gz.part-"
cat "$LOGS/sweeps-device.txt" "$LOGS/sweeps-log.txt"
for sweep in "${SWEEPS[@]}"; do
  name=$(name_of "$sweep")
  grep -E "^agreement|✗" "$LOGS/$name.txt" 2>/dev/null | sed "s/^/$name: /"
  [ -f "$LOGS/$name-err.txt" ] && tail -n 2 "$LOGS/$name-err.txt"
done
exit 0
