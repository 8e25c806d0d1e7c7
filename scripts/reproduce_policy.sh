#!/usr/bin/env bash
# Reproduce one row of the README's policy table: generate demos (if missing), train, evaluate.
#   scripts/reproduce_policy.sh pushcube a2a 1        # task config, objective, inference steps
#   scripts/reproduce_policy.sh pushcube ddpm 100
#   scripts/reproduce_policy.sh pickcube a2a 1 --train.threads=1   # extra overrides go to training
# Results: runs/<task>_<objective>/{train_summary.json, eval_<steps>step.json}
set -euo pipefail
task="${1:?task: pushcube | pickcube | stackcube | peginsertion}"
objective="${2:?objective: a2a | flow | ddpm | ddim | regression | mip}"
steps="${3:?inference steps}"
shift 3  # the rest: dotted overrides for tools/train_policy.py
py="${PYTHON:-.venv/bin/python}"
cfg="configs/policy/${task}_state.yaml"
[ -f "$cfg" ] || { echo "no config $cfg" >&2; exit 2; }
h5=$(sed -n 's/^  path: //p' "$cfg")
env_id=$(sed -n 's/^  env_id: //p' "$cfg")
control=$(sed -n 's/^  control_mode: //p' "$cfg")
if [ ! -f "$h5" ]; then
  "$py" tools/generate_demos.py --env-id "$env_id" --num-demos 100 --obs-mode state \
    --control-mode "$control" --out "$(dirname "$h5")" --quiet
fi
run="runs/${task}_${objective}"
if [ ! -f "$run/train_summary.json" ]; then
  resume=""
  [ -e "$run/checkpoints/last" ] && resume="--train.resume=true"  # continue an interrupted run
  "$py" tools/train_policy.py --config "$cfg" --output-dir "$run" --policy.objective.name="$objective" $resume "$@"
fi
"$py" tools/eval_policy.py --checkpoint "$run/checkpoints/last" --episodes 100 --steps "$steps" --seed 0 \
  --num-envs 2 --json "$run/eval_${steps}step.json" --quiet
