"""Every Python block of the README runs on its own, as a reader would paste it.

Each block runs in a fresh namespace, so a block that leans on an earlier one's imports
or variables fails. Training budgets are cut to a few hundred steps (``learn(N)`` and
``learn(total_timesteps=N)``) and vector envs to 8 sub-envs, and the files the "Your own data" block reads are written
first. A block whose first line is ``# needs: PACKAGE`` is skipped when that package is
absent, and one with a ``# real data:`` line (minutes on a real dataset, run by a benchmark's
quick mode instead) is skipped. Tracebacks point at README lines.
"""

import importlib.util
import json
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text(encoding="utf-8")
# (line of the block's first code line, code)
BLOCKS = [(TEXT.count("\n", 0, m.start(1)) + 1, m.group(1)) for m in re.finditer(r"```python\n(.*?)```", TEXT, re.S)]
BUDGET = 256
NUM_ENVS = 8


def shrink_budgets(code: str) -> str:
    code = re.sub(r"(\.learn\((?:total_timesteps=)?)[\d_]+", rf"\g<1>{BUDGET}", code)
    return re.sub(r"num_envs=\d+", f"num_envs={NUM_ENVS}", code)


def write_data_files(folder: Path) -> None:
    rows = [{"prompt": "a b", "references": ["b a"]}, {"prompt": "c d", "target": "d c"}]
    text = "".join(json.dumps(row) + "\n" for row in rows)
    for name in ("data/train.jsonl", "train.jsonl", "test.jsonl"):
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_text(text)
    (folder / "sentences.txt").write_text("the cat sat on the mat\na dog ran in the park\n")
    import datasets

    datasets.Dataset.from_list([{"prompt": "a b", "references": ["b a"]}]).save_to_disk(str(folder / "my_dataset"))


def test_the_readme_has_the_blocks_this_test_expects():
    assert len(BLOCKS) >= 8
    assert shrink_budgets("agent.learn(total_timesteps=60_000, x)\nm.learn(50_000)\nmake_vec(e, num_envs=256)") == (
        f"agent.learn(total_timesteps={BUDGET}, x)\nm.learn({BUDGET})\nmake_vec(e, num_envs={NUM_ENVS})")


@pytest.mark.parametrize("line, code", BLOCKS, ids=[f"line{line}" for line, _ in BLOCKS])
def test_every_block_that_makes_an_env_registers_the_ids(line, code):
    # textgym stays imported across blocks in this process, so running the block cannot see this
    if re.search(r"gym\.make(_vec)?\(\"(?!textgym:)", code):
        assert re.search(r"^import textgym\b", code, re.M), f"README.md line {line}: the block needs `import textgym`"


@pytest.mark.parametrize("line, code", BLOCKS, ids=[f"line{line}" for line, _ in BLOCKS])
def test_every_python_block_runs_on_its_own(tmp_path, monkeypatch, line, code):
    needs = re.match(r"# needs: (\S+)", code)
    if needs and importlib.util.find_spec(needs.group(1)) is None:
        pytest.skip(f"README.md line {line} needs {needs.group(1)}")
    if re.search(r"^# real data:", code, re.M):
        pytest.skip(f"README.md line {line} trains on a real dataset for minutes")
    monkeypatch.chdir(tmp_path)
    write_data_files(tmp_path)
    # blank lines in front, so that line numbers in a traceback are README lines
    source = "\n" * (line - 1) + shrink_budgets(code)
    try:
        exec(compile(source, str(README), "exec"), {"__name__": "__main__"})
    except Exception as err:
        pytest.fail(f"README.md python block at line {line} failed: {type(err).__name__}: {err}\n{code}")
