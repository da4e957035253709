"""CommonGen (Lin et al., 2020) from concepts: a small GPT-2 warm-started by MLE on the train
concept sets, then PPO on BLEU + coverage with a KL penalty to the warm start, scored on
held-out validation concept sets.

    python benchmarks/commongen.py [--data ../shared/data] [--seeds 0 1 2] [--out benchmarks/results/commongen.md]

Data: ``commongen/train.jsonl`` (CommonGen v1.0 train, MIT), split by concept set with
``task_kwargs={"validation": --validation, "seed": --split-seed}`` (no concept set on both
sides; the split does not change with ``--seeds``). The first ``--eval`` validation concept
sets are the fixed evaluation subset, scored against all of their references.

Model: a GPT-2 of ``--n-layer`` x ``--n-embd`` (``agents.lm.tiny_causal_lm``) over the word
vocabulary of the train split (its ``--vocab-size`` most frequent 13a words, cased), fitted
by ``agents.lm.pretrain_mle`` on the first ``--mle-sets`` train concept sets (all by
default; every reference), then ``LMPPOAgent`` (built after the warm start, so that its frozen KL reference
is the warm start) on ``reward=["bleu", ("coverage", --coverage-weight)]``, paid densely (its
change at each step, ``--reward-mode``), for ``--ppo-steps`` env steps, ``--num-envs`` episodes
per update, sampled at ``--temperature``, rolling out on the native ``TokenGenVectorEnv``, with
GAE advantages (``--advantage``: also ``self-critical``, SCST's greedy baseline, or ``group``,
GRPO's mean of ``--group-size`` episodes per concept set). In one-seed tuning, none of these
raised greedy BLEU-4 beyond noise: the further PPO moved from the warm start, the shorter its
greedy outputs got (higher n-gram precision, lower brevity penalty), and at temperature 1 its
samples score 1.6 BLEU-4, which carries little signal. ``--models gpt2 smollm2`` adds the
same rows for SmolLM2-135M (``load_causal_lm("smollm2")``, MLE on ``--smollm2-sets`` concept
sets for one epoch, then ``--smollm2-ppo-steps`` PPO env steps); ``--models smollm2`` runs it
alone (one seed: 20 to 23 minutes on one torch thread; off by default).

Rows: each model's warm start and warm start + PPO, greedy and sampled (at the PPO
temperature), with BLEU-4 (corpus sacreBLEU against all references of each concept set, and
the mean sentence BLEU, which is the reward's), ROUGE-L (mean of sentence F1), coverage
(mean share of the concepts used, lemma-insensitive) and distinct-2 (distinct bigrams / all
bigrams over the outputs), all on a 0-100 scale; mean ± the half-width of a 95% Student-t
interval over the seeds; wall time per seed. The plot shows greedy validation BLEU-4 against
PPO env steps, evaluated every ``--eval-every`` PPO updates.

``TEXTGYM_QUICK=1``: a smoke run in well under a minute (a 1-layer model, 200 train and 16
validation concept sets, a few PPO updates, one seed), written only where ``--out`` says.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import sacrebleu
import torch
from learning import T_95
from report import markdown_table, write_report

import textgym  # noqa: F401
from agents import LMPPOAgent
from agents.env_batch import EnvBatch
from agents.lm import load_causal_lm, pretrain_mle, tiny_causal_lm
from agents.lm_rollout import Sampler, collect
from textgym.rewards import bleu, coverage, distinct_n, rougeL
from textgym.tasks import Task, TextExample, load_task
from textgym.vocab import Vocabulary, WordVocabulary

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
QUICK = os.environ.get("TEXTGYM_QUICK") == "1"
EVAL_BATCH = 64  # validation concept sets written in one batched rollout
METRICS = ("BLEU-4", "sentence BLEU", "ROUGE-L", "coverage", "distinct-2")
# published CommonGen *test* BLEU-4 (Lin et al., 2020, fine-tuned pretrained models), for orientation
ANCHORS = [("GPT-2 (Lin et al., 2020), CommonGen test", 26.8), ("T5-large (Lin et al., 2020), CommonGen test", 32.0)]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder (with commongen/train.jsonl)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0] if QUICK else [0, 1, 2])
    parser.add_argument("--validation", type=float, default=0.05, help="share of concept sets held out")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the train/validation split")
    parser.add_argument("--eval", type=int, default=16 if QUICK else 200, help="validation concept sets scored")
    parser.add_argument("--train-sets", type=int, default=200 if QUICK else None,
                        help="train concept sets used at all (default all)")
    parser.add_argument("--vocab-size", type=int, default=2000 if QUICK else 5000, help="word vocabulary, specials included")
    parser.add_argument("--n-layer", type=int, default=1 if QUICK else 3)
    parser.add_argument("--n-embd", type=int, default=32 if QUICK else 128)
    parser.add_argument("--n-head", type=int, default=2 if QUICK else 4)
    parser.add_argument("--mle-sets", type=int, default=200 if QUICK else None,
                        help="train concept sets of the MLE warm start (default: all)")
    parser.add_argument("--mle-epochs", type=int, default=1 if QUICK else 2)
    parser.add_argument("--mle-lr", type=float, default=1e-3)
    parser.add_argument("--ppo-steps", type=int, default=400 if QUICK else 40_000, help="PPO env steps")
    parser.add_argument("--eval-every", type=int, default=1 if QUICK else 10, help="PPO updates between validation points")
    parser.add_argument("--lr", type=float, default=3e-5, help="PPO learning rate")
    parser.add_argument("--advantage", default="gae", help="PPO advantage: gae, self-critical (SCST) or group")
    parser.add_argument("--group-size", type=int, default=8, help="--advantage group: episodes per concept set")
    parser.add_argument("--reward-mode", default="dense", help="sparse (the reward at the end) or dense (its change each step)")
    parser.add_argument("--kl-coef", type=float, default=0.05, help="KL penalty to the warm start")
    parser.add_argument("--kl-penalty", default="reward", choices=("reward", "loss"),
                        help="where the KL penalty goes: each token's reward, or the loss (GRPO's)")
    parser.add_argument("--coverage-weight", type=float, default=0.5, help="coverage's weight in the reward (BLEU weighs 1)")
    parser.add_argument("--temperature", type=float, default=0.7, help="PPO's (and sampled decoding's) temperature")
    parser.add_argument("--num-envs", type=int, default=16 if QUICK else 64, help="episodes per PPO update")
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--models", nargs="+", choices=("gpt2", "smollm2"), default=["gpt2"],
                        help="the models to run: the small GPT-2 and SmolLM2-135M (slow on CPU)")
    parser.add_argument("--smollm2-sets", type=int, default=16 if QUICK else 1000,
                        help="train concept sets of SmolLM2's MLE warm start")
    parser.add_argument("--smollm2-lr", type=float, default=2e-4, help="SmolLM2's MLE learning rate")
    parser.add_argument("--smollm2-ppo-steps", type=int, default=64 if QUICK else 4096, help="SmolLM2's PPO env steps")
    # 2 threads on 2 cores that other processes share ran PPO 5-18x slower than 1 (OpenMP waits at every small op)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--samples", type=int, default=10, help="validation concept sets shown with their outputs")
    parser.add_argument("--out", type=Path, default=None if QUICK else ROOT / "benchmarks" / "results" / "commongen.md",
                        help="markdown file for the table, with the plot beside it (quick runs write none unless given)")
    return parser.parse_args()


def load_splits(args: argparse.Namespace) -> Task:
    """The seeded concept-set split; train cut to ``--train-sets`` and validation to ``--eval``."""
    path = args.data / "commongen" / "train.jsonl"
    if not path.is_file():
        raise SystemExit(f"skipped: no CommonGen data at {path} (give the shared data folder with --data PATH)")
    task = load_task(str(path), {"validation": args.validation, "seed": args.split_seed})
    train, validation = task.split("train")[: args.train_sets], task.split("validation")
    if len(validation) < args.eval:
        raise SystemExit(f"--eval {args.eval}: the split holds out only {len(validation)} concept sets; raise --validation")
    return Task("commongen", {"train": train, "validation": validation[: args.eval]})


def subset(task: Task, n_sets: int) -> Task:
    """The first ``n_sets`` train concept sets, as a task (what the MLE warm start reads)."""
    return Task("commongen", {"train": task.split("train")[:n_sets]})


def interval(values: Sequence[float]) -> str:
    """``mean ± half-width`` of a 95% Student-t interval; one value as itself, n=1."""
    n, mean = len(values), float(np.mean(values))
    if n == 1:
        return f"{mean:.1f} (n=1)"
    return f"{mean:.1f} ± {T_95.get(n - 1, 1.96) * float(np.std(values, ddof=1)) / math.sqrt(n):.1f}"


def scores(outputs: Sequence[str], examples: Sequence[TextExample]) -> dict[str, float]:
    """The table's metrics of ``outputs`` (one per example), 0-100."""
    n_refs = max(len(e.references) for e in examples)
    streams = [[e.references[k] if k < len(e.references) else None for e in examples] for k in range(n_refs)]
    per_output = {name: [metric(o, e.references, e.prompt) for o, e in zip(outputs, examples)]
                  for name, metric in (("sentence BLEU", bleu), ("ROUGE-L", rougeL), ("coverage", coverage))}
    return {"BLEU-4": sacrebleu.corpus_bleu(list(outputs), streams).score,
            **{name: 100 * float(np.mean(values)) for name, values in per_output.items()},
            "distinct-2": 100 * distinct_n(outputs, 2)}


def write(policy: Any, agent: LMPPOAgent, envs: Sequence[gym.Env], sampler: Sampler) -> list[str]:
    """``policy``'s text for every example of ``envs`` (copies of one env), in order, a batch at a time."""
    n = len(envs[0].unwrapped.examples)
    outputs = []
    for start in range(0, n, len(envs)):
        indices = range(start, min(start + len(envs), n))
        batch = envs[: len(indices)]
        collect(EnvBatch(batch), agent.view, policy, [0] * len(batch), sampler, options=[{"index": i} for i in indices])
        outputs += [e.unwrapped.text for e in batch]
    return outputs


@dataclass
class Row:
    name: str
    decoding: str
    scores: list[dict[str, float]] = field(default_factory=list)  # one per seed
    seconds: list[float] = field(default_factory=list)

    def cells(self) -> list[str]:
        return [self.name, self.decoding, *(interval([s[m] for s in self.scores]) for m in METRICS),
                f"{np.mean(self.seconds):.0f}"]


@dataclass
class ModelRun:
    """One model's rows, its validation curve per seed, and the first seed's outputs."""

    name: str
    rows: dict[str, Row]
    n_params: int = 0
    curves: list[list[tuple[int, float]]] = field(default_factory=list)
    outputs: dict[str, list[str]] = field(default_factory=dict)


def evaluate(agent: LMPPOAgent, valid: Sequence[gym.Env], seed: int, temperature: float) -> dict[str, list[str]]:
    """Greedy and sampled (seeded, at ``temperature``) outputs of the agent's policy."""
    sampled = Sampler(temperature, False, torch.Generator(agent.device).manual_seed(seed))
    return {"greedy": write(agent.policy, agent, valid, Sampler(deterministic=True)),
            "sampled": write(agent.policy, agent, valid, sampled)}


def stop_after(episodes: int) -> Callable[[Any, dict], bool]:
    """A ``learn`` callback that stops once ``episodes`` episodes ended: with ``num_envs``
    episodes per rollout, ``k * num_envs`` stops after k PPO updates."""
    seen = [0]

    def callback(agent: Any, record: dict) -> bool:
        seen[0] += 1
        return seen[0] < episodes

    return callback


def run_seed(run: ModelRun, build: Callable[[], tuple[Any, Vocabulary]], recipe: dict, task: Task, seed: int,
             args: argparse.Namespace) -> None:
    """The warm start and PPO for one seed: each row's scores and time, and a curve point
    every ``--eval-every`` updates."""
    torch.manual_seed(seed)
    model, vocab = build()
    run.n_params = sum(p.numel() for p in model.parameters())
    start = time.perf_counter()
    fit = pretrain_mle(model, recipe["task"], vocab, epochs=recipe["epochs"], batch_size=32, learning_rate=recipe["lr"],
                       seed=seed)
    warm_seconds = time.perf_counter() - start
    print(f"  {run.name}, seed {seed}: warm start {warm_seconds:.0f}s, perplexity {fit['perplexity']:.1f}", flush=True)
    settings = {"task": task, "vocab": vocab, "reward": ["bleu", ("coverage", args.coverage_weight)],
                "reward_mode": args.reward_mode, "max_new_tokens": args.max_new_tokens}
    env = gym.make("TokenGen-v0", **settings)
    # the writing envs hold only the validation sets, so that copies of them are cheap
    held_out = Task("commongen", {"validation": task.split("validation")})
    valid = [gym.make("TokenGen-v0", split="validation", **{**settings, "task": held_out})
             for _ in range(min(EVAL_BATCH, len(held_out.split("validation"))))]
    agent = LMPPOAgent(env, model=model, envs=gym.make_vec("TokenGen-v0", num_envs=args.num_envs, **settings), seed=seed,
                       learning_rate=args.lr, kl_coef=args.kl_coef, kl_penalty=args.kl_penalty, temperature=args.temperature,
                       num_envs=args.num_envs, advantage=args.advantage, group_size=args.group_size)
    examples = held_out.split("validation")
    outputs = {f"warm start, {k}": v for k, v in evaluate(agent, valid, seed, args.temperature).items()}
    curve = [(0, scores(outputs["warm start, greedy"], examples)["BLEU-4"])]
    print(f"    warm start: greedy BLEU-4 {curve[0][1]:.1f}", flush=True)
    ppo_seconds = 0.0
    while agent.num_timesteps < recipe["ppo_steps"]:
        start = time.perf_counter()
        agent.learn(recipe["ppo_steps"] - agent.num_timesteps, callback=stop_after(args.eval_every * args.num_envs))
        ppo_seconds += time.perf_counter() - start
        curve.append((agent.num_timesteps, scores(write(agent.policy, agent, valid, Sampler(deterministic=True)),
                                                  examples)["BLEU-4"]))
        print(f"    {agent.num_timesteps:,} PPO steps ({ppo_seconds:.0f}s): greedy BLEU-4 {curve[-1][1]:.1f}", flush=True)
    outputs |= {f"warm start + PPO, {k}": v for k, v in evaluate(agent, valid, seed, args.temperature).items()}
    for key, texts in outputs.items():
        run.rows[key].scores.append(scores(texts, examples))
        run.rows[key].seconds.append(warm_seconds + (ppo_seconds if "PPO" in key else 0.0))
    run.curves.append(curve)
    run.outputs = run.outputs or outputs


def model_run(name: str) -> ModelRun:
    rows = {f"{stage}, {decoding}": Row(f"{name}: {stage}", decoding)
            for stage in ("warm start", "warm start + PPO") for decoding in ("greedy", "sampled")}
    return ModelRun(name, rows)


def plot(runs: Sequence[ModelRun], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    for run in runs:
        for seed, curve in enumerate(run.curves):
            steps, values = zip(*curve)
            axes.plot(steps, values, marker=".", label=f"{run.name}, seed {seed}" if len(run.curves) > 1 else run.name)
    axes.set_xlabel("PPO env steps")
    axes.set_ylabel("greedy validation BLEU-4 (sacreBLEU)")
    axes.set_title("CommonGen: warm start (step 0) + PPO")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    print(f"wrote {path}")


def target_line(run: ModelRun) -> str:
    """Whether PPO (greedy) met issue 17's target against the warm start (greedy)."""
    warm, tuned = run.rows["warm start, greedy"].scores, run.rows["warm start + PPO, greedy"].scores
    mean = {m: (float(np.mean([s[m] for s in warm])), float(np.mean([s[m] for s in tuned]))) for m in METRICS}
    checks = [("BLEU-4 +2", mean["BLEU-4"][1] - mean["BLEU-4"][0] >= 2),
              ("coverage not lower", mean["coverage"][1] >= mean["coverage"][0]),
              ("distinct-2 within 10%", abs(mean["distinct-2"][1] - mean["distinct-2"][0]) <= 0.1 * mean["distinct-2"][0])]
    return (f"Target ({run.name}, greedy, seed means): BLEU-4 {mean['BLEU-4'][0]:.1f} -> {mean['BLEU-4'][1]:.1f}, coverage "
            f"{mean['coverage'][0]:.1f} -> {mean['coverage'][1]:.1f}, distinct-2 {mean['distinct-2'][0]:.1f} -> "
            f"{mean['distinct-2'][1]:.1f}: " + ", ".join(f"{name} {'met' if ok else 'NOT met'}" for name, ok in checks) + ".")


def main() -> int:
    args = parse_args()
    torch.set_num_threads(args.threads)
    begin = time.perf_counter()
    task = load_splits(args)
    vocab = WordVocabulary.build([t for e in task.split("train") for t in (e.prompt, *e.references)], max_size=args.vocab_size)
    positions = args.max_new_tokens + 2 + max(len(vocab.encode(e.prompt)) for e in task.examples())
    recipes = {  # name, builder, warm start and PPO budget of each model
        "gpt2": (f"GPT-2 {args.n_layer}x{args.n_embd}",
                 lambda: (tiny_causal_lm(vocab, args.n_layer, args.n_embd, args.n_head, positions), vocab),
                 {"task": subset(task, args.mle_sets), "epochs": args.mle_epochs, "lr": args.mle_lr,
                  "ppo_steps": args.ppo_steps, "vocab": f"a word vocabulary of {len(vocab):,} (the train split's most frequent)"}),
        "smollm2": ("SmolLM2-135M", lambda: load_causal_lm("smollm2"),
                    {"task": subset(task, args.smollm2_sets), "epochs": 1, "lr": args.smollm2_lr,
                     "ppo_steps": args.smollm2_ppo_steps, "vocab": "its own tokenizer"}),
    }
    models = [(model_run(name), build, recipe) for name, build, recipe in (recipes[m] for m in args.models)]
    for run, build, recipe in models:
        for seed in args.seeds:
            print(f"{run.name}, seed {seed}", flush=True)
            run_seed(run, build, recipe, task, seed, args)
    runs = [run for run, _, _ in models]
    total = time.perf_counter() - begin

    train, valid = task.split("train"), task.split("validation")
    rows = [row.cells() for run in runs for row in run.rows.values()]
    rows += [[f"*{name}*", "", f"*{value:.1f}*", "", "", "", "", ""] for name, value in ANCHORS]
    recipe_lines = [f"{run.name}: {run.n_params / 1e6:.2f}M parameters, {recipe['vocab']}, MLE on "
                    f"{len(recipe['task'].split('train')):,} train concept sets x {recipe['epochs']} epochs (lr {recipe['lr']:g}), "
                    f"then {recipe['ppo_steps']:,} PPO env steps." for run, _, recipe in models]
    lines = [f"# CommonGen: {len(valid)} held-out validation concept sets, warm start and PPO", "",
             f"Split: CommonGen v1.0 train, concept sets held out with `task_kwargs={{'validation': {args.validation:g}, "
             f"'seed': {args.split_seed}}}`; scored on the first {len(valid)} validation concept sets "
             f"({sum(len(e.references) for e in valid)} references), against all their references. "
             + " ".join(recipe_lines) + f" PPO runs on the {len(train):,} train concept sets, "
             f"reward `['bleu', ('coverage', {args.coverage_weight:g})]` ({args.reward_mode}), {args.advantage} advantages"
             + (f" ({args.group_size} episodes per concept set)" if args.advantage == "group" else "") + ", "
             f"lr {args.lr:g}, kl_coef {args.kl_coef:g} in the {args.kl_penalty} "
             f"(to the warm start), temperature {args.temperature:g}, {args.num_envs} episodes per update, "
             f"max_new_tokens {args.max_new_tokens}. Sampled rows sample at that temperature.", "",
             f"Seeds {args.seeds} ({'mean ± 95% t-interval' if len(args.seeds) > 1 else 'one seed: n=1'}); "
             f"{args.threads} torch threads; the whole run took {total / 60:.1f} min. All metrics are on a 0-100 scale: "
             "BLEU-4 is corpus sacreBLEU (13a) against every reference of each concept set; sentence BLEU is the mean "
             "of textgym's `bleu` (the reward's term, x100); ROUGE-L the mean sentence F1; coverage the mean share of "
             "concepts used (lemma-insensitive); distinct-2 the distinct bigrams / all bigrams over the outputs. Time is "
             "per seed (the PPO rows' include the warm start). The anchors are published **test-set** BLEU-4 of "
             "fine-tuned pretrained models, with 4+ references per concept set (ours have 1-2 each, which lowers BLEU): "
             "orientation only.", ""]
    lines += markdown_table(["model", "decoding", *METRICS, "time (s)"], rows)
    lines += ["", *(target_line(run) for run in runs)]
    if args.out is not None:
        figure = args.out.with_suffix(".png")
        plot(runs, figure)
        lines += ["", f"![greedy validation BLEU-4 against PPO steps]({figure.name})"]
    for run in runs:
        lines += ["", f"Samples ({run.name}, seed {args.seeds[0]}, greedy; concepts → warm start → warm start + PPO):", ""]
        for i, example in enumerate(valid[: args.samples]):
            lines += [f"{i + 1}. {' '.join(example.concepts)}  \n   → {run.outputs['warm start, greedy'][i]}  \n"
                      f"   → {run.outputs['warm start + PPO, greedy'][i]}"]
    write_report(lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
