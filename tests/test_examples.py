"""Every example is a numbered lesson that runs offline with a tiny budget (TEXTGYM_QUICK=1).

An example whose optional dependency is missing (09_rllib.py without Ray) prints that it
is skipped and exits 0, so it passes here too.
"""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_is_a_lesson_that_says_how_to_run_it(script):
    assert re.fullmatch(r"\d\d_[a-z0-9_]+\.py", script.name), "examples are numbered lessons: NN_name.py"
    doc = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8")))
    assert doc, "the module docstring says what the lesson teaches"
    assert f"python examples/{script.name}" in doc, "the docstring says how to run the script, under its own name"
    assert f"TEXTGYM_QUICK=1 python examples/{script.name}" in doc


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs_quickly(script):
    env = {**os.environ, "TEXTGYM_QUICK": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_EVALUATE_OFFLINE": "1"}
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip()
