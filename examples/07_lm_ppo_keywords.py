"""PPO fine-tunes a language model through env.step: an MLE-warm-started tiny GPT-2 learns to raise its BLEU.

The lesson: supervised learning gets the LM close (it imitates the references), and PPO,
rewarded by BLEU through ``env.step`` and held near the warm-start model by a KL penalty,
turns that into higher-scoring sentences. Prints samples before and after, the reward and
KL curves, and saves them to ``runs/07_lm_ppo_keywords/curves.png`` (under the working
directory; ``--out DIR`` for another folder, ``--docs`` to refresh the README's
``docs/lm_ppo_keywords.png``) when matplotlib is installed; a QUICK run writes no file.

    python examples/07_lm_ppo_keywords.py                   # 60 s on 2 shared CPU cores
    TEXTGYM_QUICK=1 python examples/07_lm_ppo_keywords.py   # a smoke run, 10 s
"""

import argparse
import os
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import textgym  # noqa: F401
from agents import LMPPOAgent
from agents.lm import pretrain_mle, tiny_causal_lm

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--out", type=Path, default=Path("runs") / "07_lm_ppo_keywords", help="folder for curves.png")
parser.add_argument("--docs", action="store_true", help="write docs/lm_ppo_keywords.png (the README's figure) instead")
args = parser.parse_args()
QUICK = os.environ.get("TEXTGYM_QUICK") == "1"
torch.set_num_threads(1)  # one thread per process: several torch processes share the cores
torch.manual_seed(0)

TASK_KWARGS = {"n_subjects": 5, "n_verbs": 4, "n_objects": 5}
MLE_EPOCHS = 1 if QUICK else 4
PPO_STEPS = 300 if QUICK else 30_000
N_EVAL = 20 if QUICK else 100


def mean_bleu(agent: LMPPOAgent, env: gym.Env, n: int, deterministic: bool) -> float:
    """Mean final BLEU over prompts 0..n-1 of the split (cycling if it is smaller)."""
    scores = []
    for i in range(n):
        obs, info = env.reset(seed=i, options={"index": i % len(env.unwrapped.examples)})
        done = False
        while not done:
            obs, _, terminated, truncated, info = env.step(agent.act(obs, info, deterministic=deterministic))
            done = terminated or truncated
        scores.append(info["metrics"]["bleu"])
    return float(np.mean(scores))


def show_samples(agent: LMPPOAgent, env: gym.Env, title: str) -> None:
    print(title)
    for i in range(4):
        obs, info = env.reset(options={"index": i})
        prompt, done = info["prompt"], False
        while not done:
            obs, _, terminated, truncated, info = env.step(agent.act(obs, info, deterministic=False))
            done = terminated or truncated
        print(f"  {prompt!r:28} -> {info['text']!r:40} BLEU {info['metrics']['bleu']:.2f}")


env = gym.make("TokenGen-v0", task="keywords", task_kwargs=TASK_KWARGS, reward="bleu", reward_mode="dense")
eval_env = gym.make("TokenGen-v0", task="keywords", task_kwargs=TASK_KWARGS, reward="bleu")
vocab = env.unwrapped.vocab

model = tiny_causal_lm(vocab, n_layer=2, n_embd=64, n_head=2)
fit = pretrain_mle(model, env.unwrapped.task, vocab, epochs=MLE_EPOCHS, batch_size=64, learning_rate=1e-3,
                   progress_bar=not QUICK)
print(f"MLE warm start: perplexity {fit['perplexity']:.2f} on the train references")

agent = LMPPOAgent(env, model=model, seed=0, num_envs=32, learning_rate=3e-4, kl_coef=0.05,
                   kl_controller="adaptive", kl_target=3.0, kl_horizon=2_000)
show_samples(agent, eval_env, "samples after the MLE warm start:")
before = {mode: mean_bleu(agent, eval_env, N_EVAL, mode) for mode in (False, True)}

agent.learn(PPO_STEPS, progress_bar=not QUICK)

show_samples(agent, eval_env, "samples after PPO:")
after = {mode: mean_bleu(agent, eval_env, N_EVAL, mode) for mode in (False, True)}
updates = agent.update_log.records
print(f"mean BLEU on {N_EVAL} train prompts, sampled: {before[False]:.3f} -> {after[False]:.3f}; "
      f"greedy: {before[True]:.3f} -> {after[True]:.3f}")
print(f"KL(policy || warm start) per episode, last update: {updates[-1]['charts/kl']:.3f} nats "
      f"(beta {agent.kl_coef:.4f})")
print("update  episode_return  kl")
for record in updates[:: max(1, len(updates) // 10)]:
    print(f"{record['step']:6d}  {record['charts/episode_return']:14.3f}  {record['charts/kl']:.3f}")

if not QUICK:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        plt = None
        print("matplotlib is not installed, so no curves are saved (pip install matplotlib)")
    if plt is not None:
        steps = [r["step"] for r in updates]
        fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(6, 5))
        top.plot(steps, [r["charts/episode_return"] for r in updates])
        top.set_ylabel("episode return (BLEU)")
        bottom.plot(steps, [r["charts/kl"] for r in updates], color="tab:red")
        bottom.set_ylabel("KL to warm start (nats)")
        bottom.set_xlabel("env steps")
        fig.suptitle("LM-PPO on keywords after an MLE warm start")
        docs = Path(__file__).resolve().parents[1] / "docs"  # next to this folder, whatever the working directory
        path = docs / "lm_ppo_keywords.png" if args.docs else args.out / "curves.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100, bbox_inches="tight")
        print(f"curves saved to {path}")
