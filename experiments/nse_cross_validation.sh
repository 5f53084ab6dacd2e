#!/usr/bin/env bash
# NSE cross-validation at small budget: the experiment of TPAMI 2021 §5.2, Fig. 6 and App. B.2
# (F_P vs F_J on both pretext tasks), plus the three contrastive sampling strategies (Fig. 14),
# at CPU budget -- not a reproduction of the published numbers.
#
# Budget of the committed results (CPU, ONE thread, OMP_NUM_THREADS=1, no data-loader workers):
#   training  F_P (contrastive, horizontal), F_P-v (vertical), F_P-x (cross) and F_J (jigsaw), each
#             ITERS=500 iterations at batch BATCH=16, seed 0, on the 80 SunHays80 training images
#             (contrastive crops CROP_P=200 instead of the papers' 420, jigsaw crops 84 as the
#             papers'; the papers' learning rates, decayed x0.2 at 1/3 and 2/3 of training as the
#             three decays of pretrain-nse's 60-epoch default (the papers give the decay period,
#             every 20 epochs, but no length) -- pretrain-nse's epoch default would decay every
#             20 epochs = 100 iterations here, i.e. 5 times in 500; everything else the
#             pretrain-nse defaults, among them the crops' augmentation: left-right and up-down
#             flips only, which keep the sampling direction (--augment flips));
#   validation each extractor frozen, each head re-fitted FIT_STEPS=200 steps on up to 64 training
#             images (the trained head of the extractor's own task is the starting point, the other
#             starts new), then REPEATS=10 passes over dense crops of Set5 and Set14 as TPAMI
#             2021 §5.2 / App. B.2 score (contrastive: one target per 200x200 crop, ~2000
#             negatives; jigsaw: one 2x2 grid per 84x84 crop, 24 permutations), mean +- std.
#   Seconds per stage, on one core of the CPU docs/experiments.md names shared with other jobs, in
#   timings.tsv. The papers
#   (TPAMI 2021 §5.1): batch 48, 420x420 contrastive crops, decays every 20 (contrastive) or 30
#   (jigsaw) epochs; pretrain-nse's defaults run 60 and 90 epochs.
#
# Each training's log (loss and accuracy every 100 iterations) is copied to
# RESULTS/train_NAME.log.jsonl.
#
# Re-runnable: a finished stage (training whose weights exist and whose log says "finished", or a
# validation whose JSON is under experiments/results/) is skipped; an interrupted training resumes
# from its saved state (--resume). Then `python experiments/render.py nse` writes the table and chart.
#
# At the papers' budget on a GPU (the same stages, default crops and epoch counts of pretrain-nse,
# DIV2K as DATA), e.g.:
#   spsr pretrain-nse DIV2K/HR -o runs/nse_p   --task contrastive --device cuda --workers 8
#   spsr pretrain-nse DIV2K/HR -o runs/nse_p_v --task contrastive --sampling vertical --device cuda
#   spsr pretrain-nse DIV2K/HR -o runs/nse_p_x --task contrastive --sampling cross --device cuda
#   spsr pretrain-nse DIV2K/HR -o runs/nse_j   --task jigsaw --device cuda --workers 8
#   spsr pretrain-nse DIV2K/HR -o runs/nse_p --evaluate --fit-steps 2000 --repeats 10 \
#       --test Set5=Set5/HR --test Set14=Set14/HR --device cuda        (and likewise for the others)
# or this script with ITERS= (empty: the papers' epochs) DEVICE=cuda THREADS=8.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=experiments/datasets.sh
. "$HERE/datasets.sh"
RUNS="${RUNS:-$HERE/runs/nse}"
RESULTS="${RESULTS:-$HERE/results/nse_cross_validation}"
ITERS="${ITERS-500}"
BATCH="${BATCH-16}"
CROP_P="${CROP_P-200}"
FIT_STEPS="${FIT_STEPS:-200}"
REPEATS="${REPEATS:-10}"
SEED="${SEED:-0}"
DEVICE="${DEVICE:-cpu}"
THREADS="${THREADS:-1}"
WORKERS="${WORKERS:-0}"
require_datasets
export OMP_NUM_THREADS="$THREADS"

mkdir -p "$RUNS" "$RESULTS"
TIMES="$RESULTS/timings.tsv"
[ -f "$TIMES" ] || printf 'stage\tseconds\n' > "$TIMES"

finished() {  # a training run whose weights exist and whose log ends "finished"
  [ -f "$1/nse.safetensors" ] && [ -f "$1/log.jsonl" ] && tail -n 1 "$1/log.jsonl" | grep -q '"reason": "finished"'
}

train() {  # name task sampling
  local name="$1" task="$2" sampling="$3" run="$RUNS/$1" start
  if finished "$run"; then echo "skip: $name trained"; return; fi
  local args=(--task "$task" --seed "$SEED" --device "$DEVICE" --workers "$WORKERS" -q)
  [ -n "$ITERS" ] && args+=(--iterations "$ITERS")
  [ -n "$BATCH" ] && args+=(--batch-size "$BATCH")
  if [ -n "$ITERS" ] && [ -n "$BATCH" ]; then  # decay at 1/3 and 2/3 of the run, in epochs
    local images epochs
    images=$(find "$DATA" -maxdepth 1 -type f | wc -l)
    epochs=$(( (ITERS * BATCH + images - 1) / images ))
    args+=(--lr-step-epochs "$(( (epochs + 2) / 3 ))")
  fi
  if [ "$task" = contrastive ]; then
    args+=(--sampling "$sampling")
    [ -n "$CROP_P" ] && args+=(--crop "$CROP_P")
  fi
  start=$(date +%s)
  if [ -d "$run/state" ]; then
    echo "resume: $name"
    "$SPSR" pretrain-nse -o "$run" --resume --device "$DEVICE" --workers "$WORKERS" -q
  else
    echo "train: $name ($task, $sampling)"; "$SPSR" pretrain-nse "$DATA" -o "$run" "${args[@]}"
  fi
  printf 'train %s\t%s\n' "$name" "$(( $(date +%s) - start ))" >> "$TIMES"
  sed "s#$RUNS#runs/nse#g" "$run/log.jsonl" > "$RESULTS/train_$name.log.jsonl"  # its training log
}

validate() {  # name tasks
  local name="$1" tasks="$2" out="$RESULTS/$1.json" start
  if [ -f "$out" ]; then echo "skip: $name validated"; return; fi
  echo "validate: $name ($tasks)"
  start=$(date +%s)
  "$SPSR" pretrain-nse "$DATA" -o "$RUNS/$name" --evaluate --eval-tasks "$tasks" \
    --test "Set5=$SET5" --test "Set14=$SET14" --fit-steps "$FIT_STEPS" --repeats "$REPEATS" \
    --seed "$SEED" --device "$DEVICE" -q --json > "$out.tmp"
  mv "$out.tmp" "$out"
  printf 'validate %s\t%s\n' "$name" "$(( $(date +%s) - start ))" >> "$TIMES"
}

# The sampling rows first (Fig. 14), each trained then scored, then F_J for the cross-validation.
train nse_p contrastive horizontal
validate nse_p contrastive,jigsaw
train nse_p_v contrastive vertical
validate nse_p_v contrastive
train nse_p_x contrastive cross
validate nse_p_x contrastive
train nse_j jigsaw horizontal
validate nse_j contrastive,jigsaw

cat > "$RESULTS/budget.json.tmp" <<EOF
{"experiment": "nse_cross_validation", "data": "$(basename "$DATA")", "iterations": "${ITERS:-default epochs}",
 "batch_size": "${BATCH:-default}", "contrastive_crop": "${CROP_P:-420}", "jigsaw_crop": 84,
 "fit_steps": $FIT_STEPS, "fit_images": 64, "repeats": $REPEATS, "seed": $SEED, "device": "$DEVICE",
 "threads": $THREADS, "workers": $WORKERS,
 "cpu": "$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)"}
EOF
mv "$RESULTS/budget.json.tmp" "$RESULTS/budget.json"
python "$HERE/portable.py" "$RESULTS"/*.json
echo "done: results in $RESULTS (render: python $HERE/render.py nse)"
