"""Every Python block of the README runs, in order, as a reader would paste them.

Training budgets are cut to a few hundred steps (``learn(N)`` and ``total_timesteps=N``),
and the files the "Your own data" block reads are written first. A block whose first
line is ``# needs: PACKAGE`` is skipped when that package is absent.
"""

import importlib.util
import json
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
BUDGET = 256


def shrink_budgets(code: str) -> str:
    return re.sub(r"(\.learn\((?:total_timesteps=)?)[\d_]+", rf"\g<1>{BUDGET}", code)


def write_data_files(folder: Path) -> None:
    rows = [{"prompt": "a b", "references": ["b a"]}, {"prompt": "c d", "target": "d c"}]
    text = "".join(json.dumps(row) + "\n" for row in rows)
    for name in ("data/train.jsonl", "train.jsonl", "test.jsonl"):
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_text(text)
    import datasets

    datasets.Dataset.from_list([{"prompt": "a b", "references": ["b a"]}]).save_to_disk(str(folder / "my_dataset"))


def test_the_readme_has_the_blocks_this_test_expects():
    assert len(BLOCKS) >= 8
    assert shrink_budgets("agent.learn(total_timesteps=60_000, x)\nm.learn(50_000)") == (
        f"agent.learn(total_timesteps={BUDGET}, x)\nm.learn({BUDGET})")


def test_every_python_block_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_data_files(tmp_path)
    namespace: dict = {"__name__": "readme"}
    for number, code in enumerate(BLOCKS, 1):
        needs = re.match(r"# needs: (\S+)", code)
        if needs and importlib.util.find_spec(needs.group(1)) is None:
            continue
        try:
            exec(compile(shrink_budgets(code), f"README.md python block {number}", "exec"), namespace)
        except Exception as err:
            pytest.fail(f"README python block {number} failed: {type(err).__name__}: {err}\n{code}")
