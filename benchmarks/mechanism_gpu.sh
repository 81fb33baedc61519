#!/usr/bin/env bash
# The whole mechanistic study (docs/mechanistic.md) on one GPU, timed from the first command to the last report:
#
#     OUT=results bash benchmarks/mechanism_gpu.sh STORE_DIR [PROCS=3] [CONCURRENT=4] [SECONDS=540]
#
# Table 1 (24 cells × 3 seeds) trains sharded over PROCS processes of CONCURRENT groups each; beside it, one
# process after another, the simplified Mamba's four trainings (|K| = 1; |K| = 2 with B, C of the pair for 40 and
# for 100 epochs; the learned read-out) and Lemma 1 on the CPU. Then the probes of Figs. 4-7 and App. C read the
# stored models and Table 1 is printed from its store. Every command's output, with the seconds it took, goes to
# $OUT/mechanism-study.txt; the plots (Figs. 4, 7) and the stores to $OUT/mechanism-study.tar.gz (two files in all,
# so that other work beside it in one call can bring its own files back). At SECONDS
# after the start the training still running is stopped by SIGINT (it checkpoints on the way out) and the report
# says so; a second call with the same STORE_DIR resumes and trains only what is missing (the total is then the sum
# of the calls' times). DEVICE=cpu tries it on the CPU.
set -uo pipefail
STORE_DIR=${1:?usage: OUT=dir bash benchmarks/mechanism_gpu.sh STORE_DIR [PROCS] [CONCURRENT] [SECONDS]}
PROCS=${2:-3}
CONCURRENT=${3:-4}
SECONDS_LEFT=${4:-540}
DEVICE=${DEVICE:-cuda}
OUT=${OUT:-out}
mkdir -p "$OUT" "$STORE_DIR"
LOGS=$(mktemp -d)
source benchmarks/gpu_env.sh
export OMP_NUM_THREADS=1
start=$(date +%s)
deadline=$(( start + SECONDS_LEFT ))
SIMPLE="--device $DEVICE --store $STORE_DIR/simple.sqlite"

# one command of the study: NAME then the approx arguments; its output and time go to the log
step() {
  local name=$1 left begin rc
  shift
  left=$(( deadline - $(date +%s) ))
  if [ "$left" -le 5 ]; then
    echo "## $name: not begun (time limit)" > "$LOGS/$name.txt"
    return
  fi
  begin=$(date +%s)
  timeout --signal=INT --kill-after=45 "$left" python3 -m cli.main "$@" > "$LOGS/$name.out" 2>&1
  rc=$?
  { echo "## $name: approx $* (exit $rc after $(( $(date +%s) - begin )) s)"; cat "$LOGS/$name.out"; echo; } \
    > "$LOGS/$name.txt"
}

begin=$(date +%s)
timeout --signal=INT --kill-after=45 "$SECONDS_LEFT" torchrun --standalone --nproc_per_node="$PROCS" -m cli.main -- \
  mechanism table1 --device "$DEVICE" --no-progress --store "$STORE_DIR/table1.sqlite" --checkpoint-every 60 \
  --concurrent "$CONCURRENT" > "$LOGS/table1-train.out" 2>&1 &
table=$!
{
  step 1-lemma mechanism lemma
  step 2-train-k1 mechanism train $SIMPLE --no-progress
  step 3-train-k2 mechanism train --keys 2 --bc-of pair --epochs 40 $SIMPLE --no-progress
  step 4-train-k2-100 mechanism train --keys 2 --bc-of pair --epochs 100 $SIMPLE --no-progress
  step 5-train-head mechanism train --learn-head $SIMPLE --no-progress
} &
simple=$!
wait "$simple"
step 6-probe-4 mechanism probe --figure 4 $SIMPLE --plot "$STORE_DIR/fig4.png"
step 7-probe-7 mechanism probe --figure 7 $SIMPLE --plot "$STORE_DIR/fig7.png"
step 8-probe-c mechanism probe --figure c $SIMPLE
step 9-probe-5 mechanism probe --figure 5 --keys 2 --bc-of pair --epochs 40 $SIMPLE
step 10-probe-6 mechanism probe --figure 6 --learn-head $SIMPLE
wait "$table"
rc=$?
echo "## table1 training: exit $rc after $(( $(date +%s) - begin )) s on $PROCS processes × $CONCURRENT groups" \
  > "$LOGS/11-table1.txt"
tail -n 5 "$LOGS/table1-train.out" >> "$LOGS/11-table1.txt"
deadline=$(( $(date +%s) + 120 ))          # the report reads the store only
step 12-table1 mechanism table1 --stored --store "$STORE_DIR/table1.sqlite"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null
  python3 -c 'import torch, triton, sys; print("python", sys.version.split()[0], "torch", torch.__version__, "triton", triton.__version__)'
  echo "the whole study: $(( $(date +%s) - start )) s of wall time (limit $SECONDS_LEFT s), on $DEVICE"
  echo
  for f in $(ls "$LOGS"/*.txt | sort -V); do cat "$f"; done
} > "$OUT/mechanism-study.txt" 2>&1
tar czf "$OUT/mechanism-study.tar.gz" -C "$STORE_DIR" .
head -n 2 "$OUT/mechanism-study.txt"
grep -h "^## " "$OUT/mechanism-study.txt"
exit 0
