#!/usr/bin/env bash
# Tables A.1–A.4 (every row, every T) with the budget recipe on one GPU, sharded over PROCS processes that share it
# (torchrun; small ensembles leave one GPU mostly idle, several keep it busy). Run from the repository root:
#
#     OUT=results bash benchmarks/tables_a_gpu.sh STORE_DIR [PROCS=4] [SECONDS=540] [TABLE[:T] ...]
#
# The parts (a table, or one T of it; default: table-a1 table-a3 table-a2 table-a4) run in order, their runs in
# STORE_DIR/runs.sqlite, checkpointed every 60 s. A whole table trains the seeds and lengths of one model size as
# one ensemble. Measured on an H100 with 4 processes: Table A.1 at T = 10 (21 groups of 3 members) in 295 s, at
# T = 20 in 354 s, i.e. 14-17 s per group; whether the processes overlap on one GPU was not measured apart. At SECONDS after the start the part in progress is stopped by
# SIGINT (each process checkpoints on the way out) and the parts not begun are skipped; a second call with the
# same STORE_DIR resumes. Each part's report (table-aK-T.txt, its stderr, tables-log.txt with the seconds each part
# took) goes into $OUT/reports.tar.gz, the store gzipped and split into 15 MB parts to $OUT/store.gz.part-* (restore with
# `cat store.gz.part-* | gunzip > STORE_DIR/runs.sqlite`). Carried wheels in .whl/ (pywavelets) are installed first.
set -uo pipefail
STORE_DIR=${1:?usage: OUT=dir bash benchmarks/tables_a_gpu.sh STORE_DIR [PROCS] [SECONDS] [TABLE:T ...]}
PROCS=${2:-4}
SECONDS_LEFT=${3:-540}
shift $(( $# < 3 ? $# : 3 ))
PARTS=("$@")
[ ${#PARTS[@]} -eq 0 ] && PARTS=(table-a1 table-a3 table-a2 table-a4)
OUT=${OUT:-out}
LOGS=$(mktemp -d)
mkdir -p "$OUT" "$STORE_DIR"
source benchmarks/gpu_env.sh
export OMP_NUM_THREADS=1
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c 'import torch, triton, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "triton", triton.__version__)'
} > "$LOGS/tables-device.txt" 2>&1
deadline=$(( $(date +%s) + SECONDS_LEFT ))
for part in "${PARTS[@]}"; do
  table=${part%:*} name=${part/:/-}
  lengths=()
  [ "$part" != "$table" ] && lengths=(--lengths "${part#*:}")
  left=$(( deadline - $(date +%s) ))
  if [ "$left" -le 10 ]; then
    echo "$part: not begun (time limit)" >> "$LOGS/tables-log.txt"
    continue
  fi
  begin=$(date +%s)
  timeout --signal=INT --kill-after=45 "$left" torchrun --standalone --nproc_per_node="$PROCS" -m cli.main -- \
    reproduce "$table" "${lengths[@]}" --device cuda --no-progress --store "$STORE_DIR/runs.sqlite" --checkpoint-every 60 \
    > "$LOGS/$name.txt" 2> "$LOGS/$name-err.txt"
  echo "$part: exit $? after $(( $(date +%s) - begin )) s on $PROCS processes" >> "$LOGS/tables-log.txt"
done
tar czf "$OUT/reports.tar.gz" -C "$LOGS" .
gzip -c "$STORE_DIR/runs.sqlite" | split -b 15000000 - "$OUT/store.gz.part-"
cat "$LOGS/tables-device.txt" "$LOGS/tables-log.txt"
for part in "${PARTS[@]}"; do
  name=${part/:/-}
  grep -E "^agreement|✗" "$LOGS/$name.txt" 2>/dev/null | sed "s/^/$part: /"
  [ -f "$LOGS/$name-err.txt" ] && tail -n 2 "$LOGS/$name-err.txt"
done
exit 0
