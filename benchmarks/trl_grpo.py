"""TRL GRPO through textgym.trl against textgym's own LM-PPO, at the same token budget, on keywords.

    python benchmarks/trl_grpo.py                        # 3 seeds, 30k generated tokens each (about 4 min on 2 CPU cores)
    python benchmarks/trl_grpo.py --seeds 0 --tokens 3000 --out ''   # a smoke run

Every loop starts from the same tiny GPT-2 (2 layers, 64 wide), warm-started by
``agents.lm.pretrain_mle`` (4 epochs) on the keywords task of lesson 07
(``n_subjects=5, n_verbs=4, n_objects=5``: 60 train prompts), then trains until it has
generated ``--tokens`` completion tokens (EOS included):

1. ``GRPOTrainer`` (TRL 1.16) with ``textgym.trl.reward("bleu")``: one BLEU per
   completion, group-relative advantages (8 completions per prompt, 64 per generation),
   TRL's defaults otherwise: one optimizer step per generation, rewards divided by the
   group's std;
2. the same with LMPPOAgent's update schedule: 4 minibatches of 16 completions and 4
   passes (``steps_per_generation=4, num_iterations=4``: 16 steps per generation),
   constant LR, rewards not divided by the std (``scale_rewards="none"``);
3. ``textgym.trl.DenseGRPOTrainer`` with ``rollout_func=EnvRollout(...)``: completions
   written through ``env.step`` (legal tokens only), per-token group advantages from the
   env's dense BLEU rewards; the schedule of 2;
4. textgym's ``LMPPOAgent`` on the dense BLEU reward, with lesson 07's settings (GAE, value
   head, adaptive KL to the warm start);
5. ``LMPPOAgent`` with its group baseline (``advantage="group"``) on BLEU per completion:
   textgym's own GRPO, with the groups (8), batch (64), learning rate and KL (none) of the
   TRL runs.

All use learning rate 3e-4. Scores: mean BLEU of sampled completions (temperature 1, legal
tokens), 4 per train prompt (every prompt 4 times for the TRL models, 240 random draws for
the agent), before and after; from 3 seeds on, mean ± the half-width of a 95% Student-t interval over seeds.
The TRL runs log every step; training stops at the first step whose completions reach
the budget.
"""

from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from keywords_lesson import EVAL_REPEATS, TASK, TASK_KWARGS, sampled_bleu, warm_start
from learning import summarise
from report import markdown_table, write_report
from transformers import TrainerCallback
from trl import GRPOConfig, GRPOTrainer

import textgym.trl as tt
from agents import LMPPOAgent

GENERATIONS, PROMPTS_PER_STEP = 8, 8
LOOPS = ("TRL GRPOTrainer, BLEU per completion, TRL defaults", "TRL GRPOTrainer, BLEU per completion, 16 steps per generation",
         "textgym.trl DenseGRPOTrainer, dense BLEU, 16 steps per generation", "textgym LMPPOAgent, dense BLEU",
         "textgym LMPPOAgent group baseline, BLEU per completion")
# LMPPOAgent's schedule (4 epochs x 4 minibatches of each rollout) in TRL's terms
MATCHED = {"per_device_train_batch_size": PROMPTS_PER_STEP * GENERATIONS // 4, "steps_per_generation": 4,
           "num_iterations": 4, "lr_scheduler_type": "constant", "scale_rewards": "none"}
TRL = {LOOPS[0]: {"per_device_train_batch_size": PROMPTS_PER_STEP * GENERATIONS}, LOOPS[1]: MATCHED, LOOPS[2]: MATCHED}
# LMPPOAgent's settings per loop: lesson 07's, and GRPOTrainer's as a group baseline
LM_PPO = {LOOPS[3]: {"reward_mode": "dense", "num_envs": 32, "kl_coef": 0.05, "kl_controller": "adaptive",
                     "kl_target": 3.0, "kl_horizon": 2_000},
          LOOPS[4]: {"reward_mode": "sparse", "num_envs": PROMPTS_PER_STEP * GENERATIONS, "advantage": "group",
                     "group_size": GENERATIONS, "kl_coef": 0.0}}


class TokenBudget(TrainerCallback):
    """Stops a TRL run once its completions add up to ``tokens`` (read from each step's log)."""

    def __init__(self, tokens: int, batch: int):
        self.tokens, self.batch, self.seen = tokens, batch, 0.0

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "completions/mean_length" in logs:
            self.seen += logs["completions/mean_length"] * self.batch
            control.should_training_stop = self.seen >= self.tokens


def sampled_bleu_trl(rollout: tt.EnvRollout, trainer: GRPOTrainer) -> float:
    out = rollout(list(tt.dataset(TASK, task_kwargs=TASK_KWARGS)["prompt"]) * EVAL_REPEATS, trainer)
    return float(np.mean([sum(r) for r in out["token_rewards"]]))  # dense rewards sum to the text's BLEU


def run_trl(warm: torch.nn.Module, loop: str, tokens: int, seed: int) -> tuple[float, float, float, float]:
    rollout = tt.EnvRollout(TASK, seed=seed, task_kwargs=TASK_KWARGS, reward="bleu", reward_mode="dense")
    batch = PROMPTS_PER_STEP * GENERATIONS
    budget = TokenBudget(tokens, batch)
    config = GRPOConfig(output_dir=tempfile.mkdtemp(prefix="trl_grpo_"), max_steps=16 * (10 * tokens // batch + 1),
                        num_generations=GENERATIONS, max_completion_length=rollout.env.max_new_tokens,
                        learning_rate=3e-4, beta=0.0, report_to="none", use_cpu=True, logging_steps=1,
                        save_strategy="no", seed=seed, disable_tqdm=True, **TRL[loop])
    kwargs = dict(model=copy.deepcopy(warm), args=config, train_dataset=tt.dataset(TASK, task_kwargs=TASK_KWARGS),
                  processing_class=tt.word_tokenizer(rollout.env.vocab), callbacks=[budget])
    if loop == LOOPS[2]:
        trainer = tt.DenseGRPOTrainer(reward_funcs=[tt.episode_return], rollout_func=rollout, **kwargs)
    else:
        trainer = GRPOTrainer(reward_funcs=[tt.reward("bleu")], **kwargs)
    before = sampled_bleu_trl(rollout, trainer)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    return before, sampled_bleu_trl(rollout, trainer), budget.seen, budget.seen / seconds


def run_lm_ppo(warm: torch.nn.Module, loop: str, tokens: int, seed: int) -> tuple[float, float, float, float]:
    settings = dict(LM_PPO[loop])
    env = gym.make(TASK, task_kwargs=TASK_KWARGS, reward="bleu", reward_mode=settings.pop("reward_mode"))
    eval_env = gym.make(TASK, task_kwargs=TASK_KWARGS, reward="bleu")
    agent = LMPPOAgent(env, model=copy.deepcopy(warm), seed=seed, learning_rate=3e-4, **settings)
    before = sampled_bleu(agent, eval_env)
    start = time.perf_counter()
    agent.learn(tokens)
    seconds = time.perf_counter() - start
    return before, sampled_bleu(agent, eval_env), float(tokens), tokens / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tokens", type=int, default=30_000, help="generated tokens per run")
    parser.add_argument("--out", default="benchmarks/results/trl_grpo.md", help="report file ('' for none)")
    args = parser.parse_args()
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    torch.set_num_threads(1)
    results: dict[str, list[tuple[float, float, float, float]]] = {loop: [] for loop in LOOPS}
    for seed in args.seeds:
        warm = warm_start(seed)
        for loop in LOOPS:
            if loop in LM_PPO:
                results[loop].append(run_lm_ppo(warm, loop, args.tokens, seed))
            else:
                results[loop].append(run_trl(warm, loop, args.tokens, seed))
            before, after, used, speed = results[loop][-1]
            print(f"seed {seed} {loop}: sampled BLEU {before:.3f} -> {after:.3f}, {used:.0f} tokens, {speed:.0f} tokens/s")
    rows = [[loop, summarise([r[0] for r in runs]), summarise([r[1] for r in runs]),
             f"{np.mean([r[2] for r in runs]):.0f}", f"{np.mean([r[3] for r in runs]):.0f}"] for loop, runs in results.items()]
    lines = [f"# TRL GRPO through textgym.trl vs textgym LM-PPO on keywords ({args.tokens} generated tokens, "
             f"seeds {args.seeds})", "",
             *markdown_table(["loop", "sampled BLEU before", "sampled BLEU after", "tokens", "train tokens/s"], rows)]
    write_report(lines, Path(args.out) if args.out else None)


if __name__ == "__main__":
    main()
