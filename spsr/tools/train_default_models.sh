#!/usr/bin/env bash
# Train the named built-in models with the toolkit's own pipeline, on a CPU, from the shared
# Sun-Hays photos: prepare-data -> pretrain-psnr (SPSR-G, L1 + branch) -> train -> eval.
#
#   spsr/tools/train_default_models.sh [DATA_DIR] [WORK_DIR]
#
# Sizes and budgets are small so that the whole chain fits in a few CPU hours; every stage
# resumes when the script is run again (prepare-data and the training runs are resumable).
# Writes spsr/assets/weights/spsr_psnr_x4.safetensors and spsr_perceptual_x4.safetensors.
set -euo pipefail

DATA_DIR=${1:-../shared/datasets/train/SunHays80}
WORK=${2:-work/default_models}
SET5=${SET5:-../shared/datasets/benchmark/Set5/HR}
SET14=${SET14:-../shared/datasets/benchmark/Set14/HR}
PSNR_ITERS=${PSNR_ITERS:-6000}
GAN_ITERS=${GAN_ITERS:-3000}
SIZE=(--arch spsr --nf 16 --nb 4)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

mkdir -p "$WORK"
store="$WORK/train_x4.h5"
[ -f "$store" ] || spsr prepare-data "$DATA_DIR" -o "$store" --scale 4 --patch 64 --step 64

# 1. PSNR-oriented SPSR-G: L1 pre-training of the whole generator.
spsr pretrain-psnr "$store" -o "$WORK/psnr" "${SIZE[@]}" --iterations "$PSNR_ITERS" \
  --batch-size 8 --lr-patch 16 --lr 4e-4 --milestones "$((PSNR_ITERS * 3 / 4))" \
  $( [ -f "$WORK/psnr/state/last.pt" ] && echo --resume )

# 2. Perceptual SPSR-G without VGG (not available offline): pixel + gradient-space losses and
#    the two relativistic discriminators, initialised from the PSNR model.
spsr train "$store" --variant g -o "$WORK/perceptual" --init "$WORK/psnr" --perceptual none \
  --nf 16 --nb 4 --iterations "$GAN_ITERS" --batch-size 8 --lr-patch 16 \
  $( [ -f "$WORK/perceptual/state/last.pt" ] && echo --resume )

# 3. Scores against bicubic, in the papers' conventions.
spsr eval --weights "$WORK/psnr" --weights "$WORK/perceptual" --model bicubic "$SET5" "$SET14" \
  --metrics psnr,ssim,niqe --json "$WORK/scores.json"

cp "$WORK/psnr/model.safetensors" spsr/assets/weights/spsr_psnr_x4.safetensors
cp "$WORK/perceptual/model.safetensors" spsr/assets/weights/spsr_perceptual_x4.safetensors
echo "wrote spsr/assets/weights/spsr_{psnr,perceptual}_x4.safetensors; scores in $WORK/scores.json"
