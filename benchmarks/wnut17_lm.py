"""WNUT-17 with real text: MaskablePPO on word ids and an LM policy (MiniLM), warm-started
and then trained with PPO, scored by span F1 on the dev set.

    python benchmarks/wnut17_lm.py [--data ../shared/data/wnut17] [--seeds 0 1 2] [--out benchmarks/results/wnut17_lm.md]

Every agent trains on ``train.conll`` and is scored on ``dev.conll``: the greedy policy tags
every dev sentence once, in order (``reset(options={"index": i})``), and micro and per-type
span F1 are computed over the whole dev set (not a mean of per-sentence F1). Rows:

1. all-O: tags every word O (F1 0);
2. MaskablePPO (sb3-contrib) on NERTag's word ids, as ``benchmarks/ner_conll.py`` trains it,
   for ``--sb3-steps`` env steps;
3. LM warm start: ``LMPPOAgent(env, model="minilm")`` fitted to the gold tags
   (``warm_start``, ``--warm-epochs`` epochs);
4. the same agent after ``learn(--ppo-steps)``: PPO with the f1_delta reward, a small
   learning rate and a KL penalty to the warm-started policy.

Cells are the mean ± the half-width of a 95% Student-t interval over ``--seeds`` (one seed:
its value and n=1). Steps/s counts env steps of training (the warm start's: the gold-tag
steps it replays). The speed figure times ``agent.rollout`` on the same seeds with the
encoder policy as it is (the sentence encoded once per episode) and with a view that
re-encodes the sentence at every step.

``TEXTGYM_QUICK=1``: a smoke run in seconds (40 train / 20 dev sentences, the tiny offline
model, one seed, a few hundred steps), written only where ``--out`` says.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from learning import T_95 as LEARNING_T_95
from ner_conll import tag_all
from report import write_report
from sb3_contrib import MaskablePPO
from stable_baselines3.common.env_util import make_vec_env

import textgym  # noqa: F401
from agents import LMPPOAgent
from agents.env_batch import EnvBatch
from agents.lm_rollout import Sampler, collect
from agents.text_views.ner_tag import NERTagView
from textgym.rewards.span_metrics import ner_report
from textgym.sb3 import policy_kwargs
from textgym.tasks.conll import read_conll

ROOT = Path(__file__).resolve().parents[1]
WNUT = ROOT.parent / "shared" / "data" / "wnut17"
QUICK = os.environ.get("TEXTGYM_QUICK") == "1"
QUICK_SENTENCES = {"train": 40, "test": 20}
NUM_ENVS = 16  # LM PPO's rollout envs (episodes per update)
EVAL_BATCH = 64  # dev sentences tagged in one batched greedy rollout
# published WNUT-17 *test* span F1, for orientation (ours are dev numbers)
T_95 = {1: 12.706, **LEARNING_T_95}  # Student-t 97.5% quantiles by degrees of freedom
ANCHORS = [("WNUT-17 2017 best system (Aguilar et al.), test set", 0.419), ("BERT-large, test set", 0.474)]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=WNUT, help="folder with train.conll and dev.conll")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0] if QUICK else [0, 1, 2])
    parser.add_argument("--out", type=Path, default=None if QUICK else ROOT / "benchmarks" / "results" / "wnut17_lm.md",
                        help="markdown file for the table (quick runs write none unless given)")
    parser.add_argument("--threads", type=int, default=1 if QUICK else 2, help="torch threads")
    parser.add_argument("--model", default=None if QUICK else "minilm",
                        help="the LM: 'minilm', a local directory, or 'tiny' for the offline tiny model")
    parser.add_argument("--sb3-steps", type=int, default=2048 if QUICK else 51_200,
                        help="MaskablePPO env steps (a multiple of its 8 x 256-step rollouts)")
    parser.add_argument("--warm-epochs", type=int, default=1 if QUICK else 2)
    parser.add_argument("--ppo-steps", type=int, default=200 if QUICK else 30_000, help="LM PPO env steps after the warm start")
    parser.add_argument("--ppo-lr", type=float, default=1e-5)
    parser.add_argument("--kl-coef", type=float, default=0.1)
    parser.add_argument("--ppo-sentences", choices=("all", "with-entities"), default="all",
                        help="PPO's train sentences: all, or only those with a gold entity (a sentence without one "
                             "scores F1 1 or 0, a cliff that rewards predicting nothing)")
    parser.add_argument("--speed-rollouts", type=int, default=1 if QUICK else 3, help="timed rollouts per view")
    args = parser.parse_args()
    if args.model == "tiny":
        args.model = None
    return args


def load_splits(data: Path) -> dict[str, object]:
    """NERTag's task: train.conll as the train split, dev.conll as the test split (the
    quick mode's slices of them as rows)."""
    files = {"train": data / "train.conll", "test": data / "dev.conll"}
    missing = [str(path) for path in files.values() if not path.is_file()]
    if missing:
        raise SystemExit(f"no WNUT-17 data: {missing} not found; give the folder with --data PATH")
    if not QUICK:
        return {split: str(path) for split, path in files.items()}
    return {split: [{"tokens": list(s.tokens), "tags": list(s.tags)} for s in read_conll(path)[: QUICK_SENTENCES[split]]]
            for split, path in files.items()}


@dataclass
class Row:
    name: str
    reports: list[dict[str, dict[str, float]]] = field(default_factory=list)  # one ner_report per seed
    seconds: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)

    def add(self, report: dict[str, dict[str, float]], seconds: float = math.nan, steps: int = 0) -> None:
        self.reports.append(report)
        self.seconds.append(seconds)
        self.steps.append(steps)


def interval(values: Sequence[float]) -> str:
    """``mean ± half-width`` of a 95% Student-t interval; one value as itself, n=1."""
    n, mean = len(values), float(np.mean(values))
    if n == 1:
        return f"{mean:.3f} (n=1)"
    return f"{mean:.3f} ± {T_95.get(n - 1, 1.96) * float(np.std(values, ddof=1)) / math.sqrt(n):.3f}"


def lm_dev_tags(agent: LMPPOAgent, dev: gym.Env) -> tuple[list[list[str]], list[list[str]]]:
    """Gold and greedy predicted tags of every dev sentence, in order, a batch of envs at a
    time (each reset to its sentence with ``options={"index": i}``)."""
    n = len(dev.unwrapped.examples)
    envs = [copy.deepcopy(dev) for _ in range(min(EVAL_BATCH, n))]
    gold, pred = [], []
    for start in range(0, n, EVAL_BATCH):
        indices = range(start, min(start + EVAL_BATCH, n))
        batch = envs[: len(indices)]
        collect(EnvBatch(batch), agent.view, agent.policy, [0] * len(batch), Sampler(deterministic=True),
                options=[{"index": i} for i in indices])
        gold += [list(env.unwrapped.example.tags) for env in batch]
        pred += [env.unwrapped.predicted_tags for env in batch]
    return gold, pred


def train_sb3(task: dict, seed: int, steps: int) -> tuple[dict, float, int]:
    """MaskablePPO as ``benchmarks/ner_conll.py`` trains it; its dev report, training time
    and env steps (whole rollouts of 8 x 256 steps)."""
    kwargs = {"task": task, "window": 2, "min_freq": 2, "reward_mode": "f1_delta"}
    envs = make_vec_env("NERTag-v0", n_envs=8, seed=seed, env_kwargs={**kwargs, "render_mode": None})  # not rgb_array
    model = MaskablePPO("MultiInputPolicy", envs, n_steps=256, batch_size=256, n_epochs=4, learning_rate=1e-3,
                        ent_coef=0.01, policy_kwargs=policy_kwargs(envs, net_arch=[64]), seed=seed, verbose=0)
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    seconds = time.perf_counter() - start
    gold, pred = tag_all(gym.make("NERTag-v0", split="test", **kwargs), model)
    return ner_report(gold, pred), seconds, model.num_timesteps


class ReencodingNERTagView(NERTagView):
    """NERTag's view without its per-episode encoding: the sentence is encoded again at
    every step, as a policy that reads the whole state afresh each step would."""

    def logits(self, policy, state, readings):
        return super().logits(policy, self.start(policy, readings), readings)


def rollout_speed(agent: LMPPOAgent, seeds: list[int], repeats: int) -> float:
    """Env steps per second of ``agent.rollout(seeds)``, after one untimed warm-up rollout."""
    agent.rollout(seeds)
    steps, start = 0, time.perf_counter()
    for _ in range(repeats):
        steps += agent.rollout(seeds).n_steps
    return steps / (time.perf_counter() - start)


def speed_figure(agent: LMPPOAgent, repeats: int) -> tuple[float, float]:
    """Rollout steps/s with the view's normal path and with re-encoding every step."""
    seeds = list(range(agent.envs.n))
    cached = rollout_speed(agent, seeds, repeats)
    view = agent.view
    agent.view = ReencodingNERTagView(agent.env, agent.policy.tokenizer, view.causal)
    try:
        reencoding = rollout_speed(agent, seeds, repeats)
    finally:
        agent.view = view
    return cached, reencoding


def run_lm(task: dict, seed: int, args: argparse.Namespace, warm: Row, tuned: Row) -> tuple[float, float] | None:
    """Rows 3 and 4 for one seed; the speed figure too for the first seed."""
    env = gym.make("NERTag-v0", task=task, window=None)
    dev = gym.make("NERTag-v0", task=task, split="test", window=None)
    torch.manual_seed(seed)
    envs = None
    if args.ppo_sentences == "with-entities":
        unwrapped = env.unwrapped
        rows = [{"tokens": list(e.tokens), "tags": list(e.tags)} for e in unwrapped.examples if set(e.tags) != {"O"}]
        envs = [gym.make("NERTag-v0", task=rows, vocab=unwrapped.vocab, tags=unwrapped.tags, window=None)
                for _ in range(NUM_ENVS)]
    agent = LMPPOAgent(env, model=args.model, envs=envs, num_envs=NUM_ENVS, seed=seed, learning_rate=args.ppo_lr,
                       kl_coef=args.kl_coef, n_epochs=2)
    gold_steps = args.warm_epochs * sum(len(example.tags) for example in env.unwrapped.examples)
    start = time.perf_counter()
    agent.warm_start(epochs=args.warm_epochs, batch_size=16, learning_rate=1e-4, head_learning_rate=1e-3)
    seconds = time.perf_counter() - start
    warm.add(ner_report(*lm_dev_tags(agent, dev)), seconds, gold_steps)
    print(f"  seed {seed}: warm start {seconds:.0f}s, dev micro F1 {warm.reports[-1]['micro']['f1']:.3f}", flush=True)
    start = time.perf_counter()
    agent.learn(args.ppo_steps)
    seconds = time.perf_counter() - start
    tuned.add(ner_report(*lm_dev_tags(agent, dev)), seconds, agent.num_timesteps)
    print(f"  seed {seed}: PPO {seconds:.0f}s, dev micro F1 {tuned.reports[-1]['micro']['f1']:.3f}", flush=True)
    return speed_figure(agent, args.speed_rollouts) if seed == args.seeds[0] else None


def table(rows: list[Row], types: list[str]) -> list[str]:
    lines = [f"| agent | micro F1 | {' | '.join(types)} | train time (s) | steps/s |",
             "|---|---|" + "---|" * len(types) + "---|---|"]
    for row in rows:
        cells = [interval([r["micro"]["f1"] for r in row.reports])]
        cells += [interval([r.get(kind, {"f1": 0.0})["f1"] for r in row.reports]) for kind in types]
        if all(math.isnan(s) for s in row.seconds):
            cells += ["-", "-"]
        else:
            cells += [f"{np.mean(row.seconds):.0f}", f"{np.mean([n / s for n, s in zip(row.steps, row.seconds)]):,.0f}"]
        lines.append(f"| {row.name} | {' | '.join(cells)} |")
    for name, f1 in ANCHORS:
        lines.append(f"| *{name}* | *{f1:.3f}* | " + "| " * len(types) + "| |")
    return lines


def main() -> int:
    args = parse_args()
    torch.set_num_threads(args.threads)
    task = load_splits(args.data)
    dev_env = gym.make("NERTag-v0", task=task, split="test", window=None)
    gold = [list(example.tags) for example in dev_env.unwrapped.examples]
    types = sorted({kind for kind in ner_report(gold, gold) if kind != "micro"})
    model_name = args.model or "tiny offline BERT"

    rows = [Row("all-O"), Row(f"MaskablePPO, word ids ({args.sb3_steps:,} steps)"),
            Row(f"{model_name}: warm start ({args.warm_epochs} epoch{'s' * (args.warm_epochs != 1)} on the gold tags)"),
            Row(f"{model_name}: warm start + PPO ({args.ppo_steps:,} steps, f1_delta, lr {args.ppo_lr:g}, "
                f"kl_coef {args.kl_coef:g}{', sentences with entities' if args.ppo_sentences != 'all' else ''})")]
    speed = None
    begin = time.perf_counter()
    for seed in args.seeds:
        rows[0].add(ner_report(gold, [["O"] * len(tags) for tags in gold]))
        print(f"seed {seed}: MaskablePPO", flush=True)
        rows[1].add(*train_sb3(task, seed, args.sb3_steps))
        print(f"  seed {seed}: MaskablePPO {rows[1].seconds[-1]:.0f}s, dev micro F1 {rows[1].reports[-1]['micro']['f1']:.3f}",
              flush=True)
        speed = run_lm(task, seed, args, rows[2], rows[3]) or speed
    total = time.perf_counter() - begin

    n_train = len(gym.make("NERTag-v0", task=task, window=None).unwrapped.examples)
    lines = [f"# WNUT-17: span F1 on the dev set ({len(gold)} sentences; trained on {n_train} train sentences)", "",
             f"Seeds {args.seeds} ({'mean ± 95% t-interval' if len(args.seeds) > 1 else 'one seed: n=1'}); "
             f"{args.threads} torch threads; the whole run took {total / 60:.1f} min. Train time and steps/s are per "
             "seed; row 4's are those of its PPO phase, which continues from row 3's agent. The published anchors "
             "are **test-set** numbers, ours are **dev-set** numbers.", ""]
    lines += table(rows, types)
    cached, reencoding = speed
    lines += ["", f"Rollout speed of the {model_name} policy on NERTag ({NUM_ENVS} envs, agent.rollout, "
              f"{args.speed_rollouts} rollouts after a warm-up):", "",
              "| view | env steps/s |", "|---|---|",
              f"| sentence encoded once per episode (NERTagView) | {cached:,.0f} |",
              f"| sentence re-encoded every step | {reencoding:,.0f} |",
              f"| ratio | {cached / reencoding:.1f}x |"]
    write_report(lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
