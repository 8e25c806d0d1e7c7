#!/usr/bin/env bash
# Create VENV and install the pinned stack plus this package (editable). Idempotent: the
# Makefile only calls it when the lock file or pyproject.toml changed since the last install.
set -euo pipefail
venv="${1:-.venv}"
lock="${2:-requirements/lock.txt}"
python="${PYTHON:-python3}"
if [ ! -x "${venv}/bin/python" ]; then
  "${python}" -m venv "${venv}"
fi
"${venv}/bin/python" -m pip install --quiet --disable-pip-version-check -r "${lock}" 2>&1 \
  | grep -v "^WARNING: Location .* is ignored" || true
"${venv}/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e . 2>&1 \
  | grep -v "^WARNING: Location .* is ignored" || true
"${venv}/bin/python" -c "import a2a_temporal, torch, mani_skill, decord, av, diffusers, timm" \
  || { echo "setup: the installed environment does not import; see the pip output above" >&2; exit 1; }
echo "setup: ${venv} ready ($(du -sh "${venv}" | cut -f1))"
