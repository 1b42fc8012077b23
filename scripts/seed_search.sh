#!/usr/bin/env bash
# The seed's AutoDL Finetuner search on one ChineseGLUE task, then predict.py with the best model.
#   GPUS=0,1,2,3 DATA_DIR=/data/tnews MODEL_DIR=/models/roberta-wwm-ext-large bash scripts/seed_search.sh tnews
# (scripts/tnews.sh, lcqmc.sh, xnli.sh and inews.sh call this with their task.)
# GPUS: comma-separated GPU ids, one trial per GPU (default 0); CPU_SLOTS=N runs N trials at a time on
# CPU instead (days for the large model: for small models and trying things out).
# DATA_DIR: the task's files (default $AUTOFT_HOME/data/<task>); MODEL_DIR: the pretrained model
# (default $AUTOFT_HOME/models/roberta-wwm-ext-large). OUTPUT_DIR defaults to output/<task>.
# POPSIZE/ROUNDS default to the seed's 16 x 10. KEEP_MODELS (default 3) bounds the disk: only the 3 best
# trials' models are kept (a large model is ~1.3 GB; keeping all 160 needs ~200 GB); KEEP_MODELS=all keeps every one.
set -euo pipefail
TASK=${1:?usage: seed_search.sh tnews|lcqmc|xnli|inews}
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  # A GPU machine gets paddlepaddle-gpu (scripts/setup.sh --gpu; docs/gpu.md), never the CPU wheel.
  if [ -z "${CPU_SLOTS:-}" ] && command -v nvidia-smi >/dev/null; then bash scripts/setup.sh --gpu; else bash scripts/setup.sh; fi
fi
. .venv/bin/activate
GPUS=${GPUS:-0}
where=(--gpu="$GPUS")
[ -n "${CPU_SLOTS:-}" ] && where=(--cpu_slots="$CPU_SLOTS")
OUTPUT_DIR=${OUTPUT_DIR:-output/$TASK}
extra=()
keep=(--keep_models="${KEEP_MODELS:-3}")
[ "${KEEP_MODELS:-}" = all ] && keep=()
[ -n "${DATA_DIR:-}" ] && extra+=(data_dir "$DATA_DIR")
[ -n "${MODEL_DIR:-}" ] && extra+=(model_dir "$MODEL_DIR")
autofinetune train.py --param_file=hparam.yaml "${where[@]}" "${keep[@]}" --popsize="${POPSIZE:-16}" --round="${ROUNDS:-10}" \
  --output_dir="$OUTPUT_DIR" --evaluator=fulltrail --tuning_strategy=hazero dataset "$TASK" "${extra[@]}"
if [ -n "${CPU_SLOTS:-}" ]; then export CUDA_VISIBLE_DEVICES=""; else export CUDA_VISIBLE_DEVICES=${GPUS%%,*}; fi
pred=(--dataset "$TASK" --checkpoint_dir "$OUTPUT_DIR")
[ -n "${DATA_DIR:-}" ] && pred+=(--data_dir "$DATA_DIR")
python predict.py "${pred[@]}"
