import os
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable

torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture
def seed():
    torch.manual_seed(0)
    return 0


def run_tool(name, *args, timeout=900):
    import subprocess

    return subprocess.run([PYTHON, str(ROOT / "tools" / name), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="session")
def demos(tmp_path_factory):
    """3 PushCube demos made by ManiSkill's motion planner (state, pd_ee_delta_pos)."""
    out = tmp_path_factory.mktemp("demos") / "push3"
    r = run_tool("generate_demos.py", "--env-id", "PushCube-v1", "--num-demos", 3, "--obs-mode", "state",
                 "--control-mode", "pd_ee_delta_pos", "--out", out, "--quiet")
    assert r.returncode == 0, r.stderr[-3000:]
    path = Path(r.stdout.strip().splitlines()[-1])
    assert path.is_file() and path.parent == out
    return path
