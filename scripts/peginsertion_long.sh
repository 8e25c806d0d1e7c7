#!/usr/bin/env bash
# PegInsertionSide at a longer budget: policy trainings side by side on one GPU, as many iterations
# as fit in BUDGET seconds (scripts/parallel_train.py measures the rate first), checkpoints at half
# and end; `best` is chosen afterwards on validation seeds and the test evaluation runs through
# scripts/policy_run.py (README, PegInsertionSide).
#   scripts/peginsertion_long.sh PACK_DIR [BUDGET_S] [SET]
# SET long (default): five runs at batch 256, the `tiny` backbone of configs/policy/peginsertion_state.yaml.
# SET wide: batch 1024, 300 demos, A2A and the Gaussian flow with the `small` backbone (width 256)
#   and 256-wide encoders (`wide`), and with `tiny` (`b1024`).
# SET action: as wide, in action space (no chunk autoencoder): A2A from the Legendre extrapolation
#   of the previous actions (policy.source=legendre) and the one-call regression.
# Needs data/PegInsertionSide-v1/state-pd_joint_delta_pos-{100,300} (scripts/policy_run.py makes them).
set -euo pipefail
cd "$(dirname "$0")/.."
PACK=${1:?usage: scripts/peginsertion_long.sh PACK_DIR [BUDGET_S] [long|wide|action]}
BUDGET=${2:-400}
SET=${3:-long}
PY=${PYTHON:-python3}
A2A="--policy.objective.rollout_weight=0 --policy.objective.rollout_k=1"
EXTRA=()
case "$SET" in
  long)
    B="--train.batch_size=256"
    RUNS=("peginsertion a2a --seed 0 --tag k1_nocons_300demos_long --demos 300 -- $A2A $B"
          "peginsertion a2a --seed 1 --tag k1_nocons_300demos_long --demos 300 -- $A2A $B"
          "peginsertion flow --seed 0 --tag 300demos_long --demos 300 -- $B"
          "peginsertion a2a --seed 0 --tag k1_nocons_long -- $A2A $B"
          "peginsertion flow --seed 0 --tag long -- $B") ;;
  wide)
    B="--train.batch_size=1024"
    W="--policy.backbone.preset=small --policy.hidden_dim=256"
    RUNS=("peginsertion a2a --seed 0 --tag k1_nocons_300demos_wide_long --demos 300 -- $A2A $W $B"
          "peginsertion flow --seed 0 --tag 300demos_wide_long --demos 300 -- $W $B"
          "peginsertion a2a --seed 0 --tag k1_nocons_300demos_b1024_long --demos 300 -- $A2A $B"
          "peginsertion flow --seed 0 --tag 300demos_b1024_long --demos 300 -- $B") ;;
  action)  # the wide set's size, batch and iteration count (8000), with no chunk autoencoder
    B="--train.batch_size=1024"
    W="--policy.backbone.preset=small --policy.hidden_dim=256"
    EXTRA=(--max-iterations 8000)
    RUNS=("peginsertion a2a --seed 0 --tag k1_nocons_action_legendre_300demos_wide_long --demos 300 -- $A2A --policy.flow_space=action --policy.source=legendre $W $B"
          "peginsertion regression --seed 0 --tag 300demos_wide_long --demos 300 -- $W $B") ;;
  *) echo "scripts/peginsertion_long.sh: SET=$SET is not one of long, wide, action" >&2; exit 2 ;;
esac
ARGS=("${EXTRA[@]}")
for r in "${RUNS[@]}"; do ARGS+=(--run "$r"); done
exec "$PY" scripts/parallel_train.py --budget-s "$BUDGET" --hard-limit-s "$((BUDGET + 25))" --pack-dir "$PACK" "${ARGS[@]}"
