#!/usr/bin/env bash
# The seed's AutoDL Finetuner search on LCQMC, then predict.py with the best model.
#   GPUS=0,1,2,3 DATA_DIR=/data/lcqmc MODEL_DIR=/models/roberta-wwm-ext-large bash scripts/lcqmc.sh
# GPUS: comma-separated GPU ids, one trial per GPU (default 0).
# DATA_DIR: the LCQMC files (default $AUTOFT_HOME/data/lcqmc); MODEL_DIR: the pretrained model
# (default $AUTOFT_HOME/models/roberta-wwm-ext-large). OUTPUT_DIR defaults to output/lcqmc.
# POPSIZE/ROUNDS default to the seed's 16 x 10.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || bash scripts/setup.sh
. .venv/bin/activate
GPUS=${GPUS:-0}
OUTPUT_DIR=${OUTPUT_DIR:-output/lcqmc}
extra=()
[ -n "${DATA_DIR:-}" ] && extra+=(data_dir "$DATA_DIR")
[ -n "${MODEL_DIR:-}" ] && extra+=(model_dir "$MODEL_DIR")
autofinetune train.py --param_file=hparam.yaml --gpu="$GPUS" --popsize="${POPSIZE:-16}" --round="${ROUNDS:-10}" \
  --output_dir="$OUTPUT_DIR" --evaluator=fulltrail --tuning_strategy=hazero dataset lcqmc "${extra[@]}"
export CUDA_VISIBLE_DEVICES=${GPUS%%,*}
pred=(--dataset lcqmc --checkpoint_dir "$OUTPUT_DIR")
[ -n "${DATA_DIR:-}" ] && pred+=(--data_dir "$DATA_DIR")
python predict.py "${pred[@]}"
