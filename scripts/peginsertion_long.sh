#!/usr/bin/env bash
# PegInsertionSide at a longer budget: five policy trainings side by side on one GPU, as many
# iterations as fit in BUDGET seconds (scripts/parallel_train.py measures the rate first), batch 256,
# checkpoints at half and end; `best` is chosen afterwards on validation seeds and the test
# evaluation runs through scripts/policy_run.py (README, PegInsertionSide).
#   scripts/peginsertion_long.sh PACK_DIR [BUDGET_S]
# Needs data/PegInsertionSide-v1/state-pd_joint_delta_pos-{100,300} (scripts/policy_run.py makes them).
set -euo pipefail
cd "$(dirname "$0")/.."
PACK=${1:?usage: scripts/peginsertion_long.sh PACK_DIR [BUDGET_S]}
BUDGET=${2:-400}
PY=${PYTHON:-python3}
A2A="--policy.objective.rollout_weight=0 --policy.objective.rollout_k=1"
B="--train.batch_size=256"
exec "$PY" scripts/parallel_train.py --budget-s "$BUDGET" --hard-limit-s "$((BUDGET + 60))" --pack-dir "$PACK" \
  --run "peginsertion a2a --seed 0 --tag k1_nocons_300demos_long --demos 300 -- $A2A $B" \
  --run "peginsertion a2a --seed 1 --tag k1_nocons_300demos_long --demos 300 -- $A2A $B" \
  --run "peginsertion flow --seed 0 --tag 300demos_long --demos 300 -- $B" \
  --run "peginsertion a2a --seed 0 --tag k1_nocons_long -- $A2A $B" \
  --run "peginsertion flow --seed 0 --tag long -- $B"
