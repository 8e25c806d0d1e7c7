"""Console commands and the layering rules the tools follow."""
import ast
import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def test_every_tool_is_a_console_command():
    targets = {v.split(":")[0].rsplit(".", 1)[1]: k for k, v in SCRIPTS.items()}
    tools = {p.stem for p in (ROOT / "tools").glob("*.py")}
    assert tools == set(targets), "tools/ and [project.scripts] must list the same programs"
    for name, command in targets.items():
        assert command == "a2a-" + name.replace("_", "-")
        module, func = SCRIPTS[command].split(":")
        assert callable(getattr(importlib.import_module(module), func))


@pytest.mark.parametrize("command", ["a2a-train-policy", "a2a-eval-policy", "a2a-policy-table"])
def test_console_command_runs(command):
    exe = Path(sys.executable).with_name(command)
    if not exe.is_file():
        pytest.skip(f"{command} is not installed in this environment (pip install -e .)")
    r = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "usage" in r.stdout.lower()


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_no_tool_imports_another_and_envs_stay_below_heads():
    for path in list((ROOT / "a2a_temporal" / "commands").glob("*.py")) + list((ROOT / "demos").glob("*.py")):
        mods = imported_modules(path)
        others = {m for m in mods if m.startswith("a2a_temporal.commands.")}
        assert not others, f"{path.name} imports another command: {others}"
        assert not (mods & {p.stem for p in (ROOT / "tools").glob("*.py")}), f"{path.name} imports a tool module"
    for path in (ROOT / "a2a_temporal" / "envs").glob("*.py"):
        text = path.read_text()
        assert "from ..heads" not in text and "a2a_temporal.heads" not in text, f"envs/{path.name} imports heads/"
    for path in (ROOT / "a2a_temporal" / "flow").glob("*.py"):  # the flow core: torch only
        assert "from .." not in path.read_text() and "a2a_temporal" not in imported_modules(path)


def test_run_tool_passes_progress_through_and_names_the_failure(tmp_path, capfd):
    """Composed tools (demos, the video pipeline) show the child's stderr as it comes and turn a
    failure into one line carrying the child's own error."""
    from a2a_temporal.cli import run_tool as run_child
    from a2a_temporal.errors import A2AError

    with pytest.raises(A2AError, match=r"tools/video_pipeline.py failed \(exit 2\): .*nowhere: video folder not found"):
        run_child("video_pipeline.py", ["--videos", tmp_path / "nowhere", "--output-dir", tmp_path / "out"])
    assert "nowhere: video folder not found" in capfd.readouterr().err  # passed through, not swallowed
