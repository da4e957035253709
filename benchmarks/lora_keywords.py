"""LoRA against full fine-tuning for LM-PPO: the learning curve on keywords, at the same token budget.

    python benchmarks/lora_keywords.py                   # 5 seeds, 60k generated tokens each (about 12 min on 2 CPU cores)
    python benchmarks/lora_keywords.py --seeds 0 --tokens 4000 --points 2 --out ''   # a smoke run

Every run starts from the warm start of ``benchmarks/trl_grpo.py`` (a tiny GPT-2, 2 layers,
64 wide, 4 MLE epochs on lesson 07's keywords task), and trains ``LMPPOAgent`` on the dense
BLEU reward with lesson 07's settings (32 envs, adaptive KL to the warm start, target 3).
The layouts:

1. full fine-tune: every trunk weight trains, the value head on the same trunk, and a
   frozen reference copy;
2. LoRA (``lora_r``) with textgym's default targets on TokenGen: peft's default GPT-2
   modules (``c_attn``) and the LM head, which scores the actions; only the adapters and
   the heads train, and the reference is the same trunk with the adapters off;
3. LoRA on every linear layer and the LM head;
4. LoRA on ``c_attn`` only (peft's default alone), to show why the LM head is a default
   target: on this small model most of what PPO changes is in the (tied) token embedding
   and LM head, which full fine-tuning trains and attention adapters cannot reach.

Each run is scored every ``tokens / points`` generated tokens by the mean BLEU of sampled
completions (4 per train prompt); the table gives, at each point, the mean ± the half-width
of a 95% Student-t interval over seeds (from 3 seeds on). The memory side of LoRA is
``benchmarks/lm_memory.py`` (SmolLM2).
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
from keywords_lesson import TASK, TASK_KWARGS, sampled_bleu, warm_start
from learning import summarise
from report import markdown_table, write_report

from agents import LMPPOAgent

LESSON_07 = {"num_envs": 32, "kl_coef": 0.05, "kl_controller": "adaptive", "kl_target": 3.0, "kl_horizon": 2_000}


def curve(warm: torch.nn.Module, layout: dict, tokens: int, points: int, seed: int) -> tuple[list[float], float]:
    """Sampled BLEU before training and after each of ``points`` equal parts of ``tokens``, and the seconds spent training."""
    env = gym.make(TASK, task_kwargs=TASK_KWARGS, reward="bleu", reward_mode="dense")
    eval_env = gym.make(TASK, task_kwargs=TASK_KWARGS, reward="bleu")
    agent = LMPPOAgent(env, model=copy.deepcopy(warm), seed=seed, **LESSON_07, **layout)
    scores, seconds = [sampled_bleu(agent, eval_env)], 0.0
    for _ in range(points):
        start = time.perf_counter()
        agent.learn(tokens // points)
        seconds += time.perf_counter() - start
        scores.append(sampled_bleu(agent, eval_env))
    return scores, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--tokens", type=int, default=60_000, help="generated tokens per run")
    parser.add_argument("--points", type=int, default=3, help="evaluations along the run")
    parser.add_argument("--lora-r", type=int, default=8)
    parser.add_argument("--lr", type=float, default=3e-4, help="learning rate of the full fine-tune")
    parser.add_argument("--lora-lr", type=float, default=1e-3, help="learning rate of the adapters")
    parser.add_argument("--out", default="benchmarks/results/lora_keywords.md", help="report file ('' for none)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    lora = {"learning_rate": args.lora_lr, "lora_r": args.lora_r}
    layouts = {"full fine-tune, shared trunk": {"learning_rate": args.lr},
               f"LoRA r={args.lora_r}, default targets (c_attn, lm_head)": lora,
               f"LoRA r={args.lora_r}, every linear layer and lm_head":
                   {**lora, "lora_target_modules": ["c_attn", "c_proj", "c_fc", "lm_head"]},
               f"LoRA r={args.lora_r}, c_attn only": {**lora, "lora_target_modules": ["c_attn"]}}
    results: dict[str, list[tuple[list[float], float]]] = {name: [] for name in layouts}
    for seed in args.seeds:
        warm = warm_start(seed)
        for name, layout in layouts.items():
            results[name].append(curve(warm, layout, args.tokens, args.points, seed))
            scores, seconds = results[name][-1]
            print(f"seed {seed} {name}: sampled BLEU {' -> '.join(f'{s:.3f}' for s in scores)} ({seconds:.0f} s)", flush=True)
    marks = [f"{args.tokens * i // args.points:,} tokens" for i in range(args.points + 1)]
    rows = [[f"{name} (lr {layout['learning_rate']:g})",
             *(summarise([scores[i] for scores, _ in results[name]]) for i in range(args.points + 1)),
             f"{np.mean([seconds for _, seconds in results[name]]):.0f}"] for name, layout in layouts.items()]
    lines = [f"# LM-PPO on keywords, LoRA against full fine-tuning: sampled BLEU (seeds {args.seeds})", "",
             *markdown_table(["layout", *marks, "train s per run"], rows)]
    write_report(lines, Path(args.out) if args.out else None)


if __name__ == "__main__":
    main()
