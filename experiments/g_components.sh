#!/usr/bin/env bash
# SPSR-G components at small budget: the rows of TPAMI 2021 Table 2 (CVPR 2020 Table 2 has three
# of them) at CPU budget -- not a reproduction of either table.
# Budget (every number is an option below; CPU, no data-loader workers). The committed results ran
# the pre-training with THREADS=2, then the two seeds side by side with THREADS=1 each
# (`THREADS=1 SEEDS=0 g_components.sh & THREADS=1 SEEDS=1 g_components.sh`): two runs with 2
# threads each on a 2-core CPU spin against each other and are several times slower. About 45 min.
#   data       the 80 SunHays80 training images, x4, 128x128 HR patches every 64 pixels
#              (`spsr prepare-data --patch 128 --step 64`); Set5 and Set14 only as test sets;
#   pretrain   ONE shared `spsr pretrain-psnr` (RRDB generator, NF=32 channels, NB=4 blocks),
#              PSNR_ITERS=2000 iterations at batch BATCH=8, LR crops 32, seed 0;
#   rows       `spsr ablate --spec g_components_cpu.toml` (the rows of `--preset g-components` with
#              the CPU budget's loss weights, see that file): ESRGAN, SPSR-G w/o GB, w/o GL, w/o AGL, w/o PGL,
#              SPSR-G, each from that init (its nf/nb), ITERS=200 iterations at batch BATCH of
#              LR_PATCH=16 (16x16 LR crops at random positions in the 128x128 patches), both
#              discriminators at D_NF=32 channels (half the papers' width), the same data
#              order within a seed, for each of SEEDS="0 1" (one ablation folder per seed);
#              perceptual loss OFF (no ImageNet VGG weights here) and the image / gradient-map L1
#              weighted 1 instead of 0.01 to anchor the content in its place (at 0.01 every row
#              collapsed), so the rows differ only in the gradient branch and the gradient losses;
#   scoring    psnr,ssim,niqe,gradmap_l1 on Set5 and Set14 under the spsr protocol (PSNR/SSIM on
#              Y, border 4, SSIM after ssim.m's downsampling; NIQE on Y, border 4; gradient-map
#              error on RGB in [0, 1], border 4). ablate writes the docs-ready table
#              (ablation.md, .csv, .json), copied to
#              experiments/results/g_components/seed<N>/ (the runs stay under experiments/runs/).
#
# Re-runnable: prepare-data is skipped when the store exists, pretrain-psnr when its weights exist
# and its log says "finished" (else it resumes), and `spsr ablate` itself reuses finished rows and
# resumes half-finished ones.
#
# Larger, on a GPU (DIV2K, 128x128 HR crops, the default sizes nf 64 / nb 23, VGG perceptual loss
# ON; batch 16, spsr's default, where TPAMI 2021 §5.1 writes 15 LR patches per mini-batch): 50,000
# iterations a row below, still a fraction of the papers' budget, which halves the learning rate
# at 50k/100k/200k/300k and so runs past 300k iterations. E.g.:
#   spsr prepare-data DIV2K/HR -o data/div2k_x4.h5 --scale 4
#   spsr pretrain-psnr data/div2k_x4.h5 -o runs/psnr --device cuda --workers 8
#   spsr ablate data/div2k_x4.h5 --preset g-components --init runs/psnr --iterations 50000 \
#       --hr Set5/HR --hr Set14/HR --metrics lpips,psnr,ssim,niqe,gradmap_l1 --device cuda \
#       --seed 0 -o ablations/g_seed0          (and --seed 1 -o ablations/g_seed1)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=experiments/datasets.sh
. "$HERE/datasets.sh"
RUNS="${RUNS:-$HERE/runs/g_components}"
RESULTS="${RESULTS:-$HERE/results/g_components}"
PATCH="${PATCH:-128}"
STEP="${STEP:-64}"
NF="${NF:-32}"
NB="${NB:-4}"
PSNR_ITERS="${PSNR_ITERS:-2000}"
ITERS="${ITERS:-200}"
D_NF="${D_NF:-32}"
LR_PATCH="${LR_PATCH:-16}"
BATCH="${BATCH:-8}"
SEEDS="${SEEDS:-0 1}"
METRICS="${METRICS:-psnr,ssim,niqe,gradmap_l1}"
DEVICE="${DEVICE:-cpu}"
THREADS="${THREADS:-2}"
WORKERS="${WORKERS:-0}"
require_datasets
export OMP_NUM_THREADS="$THREADS"

DRY=()
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY=(--dry-run) ;;
    *) echo "usage: $0 [--dry-run]" >&2; exit 2 ;;
  esac
done

mkdir -p "$RUNS" "$RESULTS"
STORE="$RUNS/sunhays80_x4_p${PATCH}.h5"
PSNR="$RUNS/psnr"

if [ -f "$STORE" ]; then
  echo "skip: $STORE exists"
else
  "$SPSR" prepare-data "$DATA" -o "$STORE" --scale 4 --patch "$PATCH" --step "$STEP" -j "$WORKERS" -q
fi

if [ -f "$PSNR/log.jsonl" ] && tail -n 1 "$PSNR/log.jsonl" | grep -q '"reason": "finished"'; then
  echo "skip: $PSNR pre-trained"
elif [ -d "$PSNR/state" ]; then
  "$SPSR" pretrain-psnr -o "$PSNR" --resume --device "$DEVICE" --workers "$WORKERS" -q
else
  "$SPSR" pretrain-psnr "$STORE" -o "$PSNR" --arch rrdb --nf "$NF" --nb "$NB" \
    --iterations "$PSNR_ITERS" --batch-size "$BATCH" --seed 0 --device "$DEVICE" --workers "$WORKERS" -q
fi

for seed in $SEEDS; do
  "$SPSR" ablate "$STORE" --spec "$HERE/g_components_cpu.toml" --init "$PSNR" --iterations "$ITERS" \
    --batch-size "$BATCH" --set data.lr_patch="$LR_PATCH" --set d.nf="$D_NF" --metrics "$METRICS" \
    --hr "$SET5" --hr "$SET14" --protocol spsr --seed "$seed" --device "$DEVICE" \
    --workers "$WORKERS" -o "$RUNS/ablate_seed$seed" "${DRY[@]}"
  if [ ${#DRY[@]} -eq 0 ]; then  # the tables, without the runs' weights
    mkdir -p "$RESULTS/seed$seed"
    cp "$RUNS/ablate_seed$seed"/ablation.{md,csv,json} "$RESULTS/seed$seed/"
    python "$HERE/portable.py" "$RESULTS/seed$seed"/ablation.{md,csv,json}
  fi
done

# The papers' Fig. 8 analogue: one Set14 image super-resolved by the ESRGAN and SPSR-G rows of
# seed 0, and the gradient maps M(.) of both and of the HR image (`spsr gradmap`), as one panel.
FIG_IMAGE="${FIG_IMAGE:-zebra}"
if [ ${#DRY[@]} -eq 0 ]; then
  FIG="$RUNS/fig8"
  rm -rf "$FIG" && mkdir -p "$FIG/Set14"
  cp "$SET14/$FIG_IMAGE.png" "$FIG/Set14/"
  "$SPSR" eval --weights "$RUNS/ablate_seed0/runs/esrgan" --weights "$RUNS/ablate_seed0/runs/spsr-g" \
    "$FIG/Set14" --metrics psnr,gradmap_l1 --device "$DEVICE" --save-sr "$FIG/sr" -q
  "$SPSR" gradmap "$FIG/Set14" "$FIG/grad/hr"
  for row in esrgan spsr-g; do
    "$SPSR" gradmap "$FIG/sr/$row" "$FIG/grad/$row" --recursive
  done
  python "$HERE/render.py" fig8 "$FIG" "$RESULTS/fig8_$FIG_IMAGE.png"
fi
python "$HERE/render.py" g "$RESULTS"
