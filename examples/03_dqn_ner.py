"""A DQN tagger generalises to names it never saw: span F1 on the test split, against the all-O baseline.

NERTag-Entities-v0 shows the agent a 3-word window (word ids and word shapes) and the
previous tag, and pays 1 per correct tag. Training words seen once become UNK
(``min_freq=2``), and the test split's names never occur in training, so the Q-network
has to tag unknown capitalised words from their shape and context. Each tag is judged on
its own, so the discount is 0 (a bandit per token). Scored with
``textgym.rewards.span_metrics.ner_report`` on every test sentence.

    python examples/03_dqn_ner.py                   # 38 s on 2 shared CPU cores
    TEXTGYM_QUICK=1 python examples/03_dqn_ner.py   # a smoke run, 8 s
"""

import os
import time

import gymnasium as gym
import torch

import textgym  # noqa: F401  (registers the ids)
from agents import DQNAgent
from textgym.rewards.span_metrics import ner_report

QUICK = os.environ.get("TEXTGYM_QUICK") == "1"
TRAIN_STEPS = 1_500 if QUICK else 10_000
torch.set_num_threads(1)

env = gym.make("NERTag-Entities-v0")
test_env = gym.make("NERTag-Entities-v0", split="test")
print(f"observation {env.observation_space}\ntags {env.unwrapped.tags}")

agent = DQNAgent(env, seed=0, gamma=0.0, device="cpu")
start = time.perf_counter()
agent.learn(total_timesteps=TRAIN_STEPS)
print(f"trained DQN for {TRAIN_STEPS} steps in {time.perf_counter() - start:.0f} s")

# tag every test sentence greedily; the env records the predicted tags
gold, pred = [], []
for index in range(len(test_env.unwrapped.examples)):
    obs, info = test_env.reset(options={"index": index})
    done = False
    while not done:
        obs, reward, terminated, truncated, info = test_env.step(agent.act(obs, info))
        done = terminated or truncated
    gold.append(list(test_env.unwrapped.example.tags))
    pred.append(list(test_env.unwrapped.predicted_tags))

all_o = [["O"] * len(tags) for tags in gold]
report, baseline = ner_report(gold, pred), ner_report(gold, all_o)
print(f"\nspan F1 on the {len(gold)} test sentences (names unseen in training):")
print(f"  all-O baseline  {baseline['micro']['f1']:.3f}")
print(f"  DQN             {report['micro']['f1']:.3f}")
print("per type (precision / recall / F1, gold spans):")
for kind, row in report.items():
    print(f"  {kind:<6} {row['precision']:.3f} / {row['recall']:.3f} / {row['f1']:.3f}  ({row['support']:.0f})")
print("e.g.  " + info["text"])
