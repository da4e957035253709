"""Step cost of the single envs, and how it grows with the length of TokenGen's output.

    python benchmarks/step_cost.py [--steps 20000] [--episodes 200]

Prints random-action steps/s of TokenGen (copy, sparse) and NERTag (sparse span F1), then
TokenGen's steps/s around 1k and 16k written tokens (``max_new_tokens=20000``, random
non-EOS actions): a step should cost the same at both lengths.

Then TokenGen with a tokenizer vocabulary (SmolLM2's when it is cached, else a byte-level
BPE trained here) and a dense reward, as an LM rollout steps it: ms per step over
episodes of 16 and 64 tokens that write a reference's tokens then other sentences'. The
reward is followed as the text grows (the env's way) or rescored on the whole text at
every step (the same metric as a callable, which has no incremental scorer: what the env
did before it followed a tokenizer's text). Each figure is the best of 3 interleaved runs.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

import textgym  # noqa: F401  (registers the ids)
from textgym.envs import TokenGenEnv
from textgym.rewards.metrics import bleu, rougeL

SENTENCES = [
    "A dog catches a frisbee thrown by its owner in the park.",
    "The chef slices fresh vegetables on a wooden cutting board.",
    "Children are building a sandcastle on the beach at sunset.",
    "A man rides his bicycle along the river on a cloudy morning.",
    "Two friends share a pizza and laugh at a small cafe.",
    "The farmer drives a tractor across the field to plant corn.",
    "She reads a book under a tree while her cat sleeps nearby.",
    "Students raise their hands to answer the teacher's question.",
]
# prompt i: its references are sentences i and i+1
TOKENIZER_TASK = [{"prompt": f"example {i}", "references": [SENTENCES[i], SENTENCES[(i + 1) % len(SENTENCES)]]}
                  for i in range(len(SENTENCES))]


def random_steps_per_second(env: gym.Env, n_steps: int, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    n = env.action_space.n
    actions = rng.integers(n, size=n_steps).tolist()
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return n_steps / (time.perf_counter() - start)


def steps_per_second_at(env: gym.Env, written: int, n_steps: int, rng: np.random.Generator) -> float:
    """Steps/s of ``n_steps`` non-EOS steps after ``written`` tokens (the env is fresh)."""
    unwrapped = env.unwrapped
    legal = np.flatnonzero(unwrapped.action_masks())
    legal = legal[legal != unwrapped.vocab.eos_id]
    env.reset(seed=0)
    for action in rng.choice(legal, size=written).tolist():
        env.step(action)
    actions = rng.choice(legal, size=n_steps).tolist()
    start = time.perf_counter()
    for action in actions:
        env.step(action)
    return n_steps / (time.perf_counter() - start)


def subword_tokenizer() -> tuple[str, Any]:
    """SmolLM2's tokenizer when its model is cached, else a byte-level BPE trained here."""
    try:
        from transformers import AutoTokenizer

        from textgym.models import model_dir

        return "SmolLM2", AutoTokenizer.from_pretrained(model_dir("smollm2"), local_files_only=True)
    except (ImportError, OSError):
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
        from transformers import PreTrainedTokenizerFast

        backend = Tokenizer(models.BPE())
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<eos>"], show_progress=False,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        backend.train_from_iterator(SENTENCES, trainer)
        return "byte-level BPE", PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>")


def rescored(metric: Callable[..., float]) -> Callable[..., float]:
    """``metric`` as a callable reward: the env has no incremental scorer for it."""

    def reward(prediction: str, references: list[str], source: str) -> float:
        return metric(prediction, references, source)

    reward.__name__ = metric.__name__
    return reward


def ms_per_step_of_episodes(env: TokenGenEnv, length: int, n_episodes: int) -> float:
    """Mean ms per step of ``n_episodes`` episodes of ``length`` tokens (``env`` truncates
    there): each writes its first reference's tokens, then those of the other sentences."""
    vocab, elapsed = env.vocab, 0.0
    text = " ".join(SENTENCES)
    for episode in range(n_episodes):
        index = episode % len(env.examples)
        env.reset(options={"index": index})
        tokens = vocab.encode(f"{env.example.references[0]} {text}")[:length]
        start = time.perf_counter()
        for token in tokens:
            env.step(token)
        elapsed += time.perf_counter() - start
    return 1e3 * elapsed / (n_episodes * length)


def tokenizer_rows(n_episodes: int) -> None:
    name, tokenizer = subword_tokenizer()
    print(f"\nTokenGen dense, {name} vocabulary ({len(tokenizer)} tokens): ms/step over an episode")
    print(f"{'reward':8s} {'length':>6s} {'rescored':>9s} {'followed':>9s} {'speed-up':>8s}")
    for metric in (bleu, rougeL):
        for length in (16, 64):
            envs = [TokenGenEnv(task=TOKENIZER_TASK, vocab=tokenizer, reward=reward, reward_mode="dense",
                                max_new_tokens=length, action_mask=False)
                    for reward in (rescored(metric), metric.__name__)]
            for env in envs:
                ms_per_step_of_episodes(env, length, 2)  # warm-up: caches, lazy imports
            # the best of 3 runs each, interleaved, so that both saw the same load
            runs = [[ms_per_step_of_episodes(env, length, n_episodes) for env in envs] for _ in range(3)]
            before, after = (min(times) for times in zip(*runs))
            print(f"{metric.__name__:8s} {length:6d} {before:9.3f} {after:9.3f} {before / after:7.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000, help="random steps per throughput row")
    parser.add_argument("--episodes", type=int, default=200, help="episodes per tokenizer-vocabulary row")
    args = parser.parse_args()
    rows = {
        "TokenGen copy sparse": gym.make("TokenGen-v0", disable_env_checker=True).unwrapped,
        "NERTag f1": gym.make("NERTag-v0", reward_mode="f1", disable_env_checker=True).unwrapped,
    }
    for name, env in rows.items():
        print(f"{name:24s} {random_steps_per_second(env, args.steps):10,.0f} steps/s")
    rng = np.random.default_rng(0)
    long = gym.make("TokenGen-v0", max_new_tokens=20_000, disable_env_checker=True).unwrapped
    for written in (1_000, 16_000):
        rate = steps_per_second_at(long, written, 1_000, rng)
        print(f"TokenGen at {written:6,d} tokens {rate:10,.0f} steps/s ({1e3 / rate:.3f} ms/step)")
    tokenizer_rows(args.episodes)


if __name__ == "__main__":
    main()
