"""The benchmarks that read real data run end to end on it (skipped when it is absent)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WNUT_DEV = ROOT.parent / "shared" / "data" / "wnut17" / "dev.conll"


@pytest.mark.skipif(not WNUT_DEV.is_file(), reason="../shared/data/wnut17 is absent")
def test_ner_conll_benchmark_scores_a_conll_file():
    env = {**os.environ, "TEXTGYM_QUICK": "1"}
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ner_conll.py"), "--train", str(WNUT_DEV)],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(1009 sentences)" in result.stdout
    assert "| person" in result.stdout and "| micro" in result.stdout
