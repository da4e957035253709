"""LM-PPO speed and memory: rollout tokens/s through ``env.step`` (one KV-cached forward per
step for the batch of envs) against ``model.generate`` tokens/s for the same model, batch,
prompts and length, measured in one run; peak memory; the time of one PPO update; and the
memory of the shared-trunk layout against separate policy / value / reference copies.

    python benchmarks/lm_ppo.py                          # tiny GPT-2 on CPU
    python benchmarks/lm_ppo.py --model smollm2 --batch 8 --new-tokens 16
    python benchmarks/lm_ppo.py --compile               # torch.compile the one-token steps
    python benchmarks/lm_ppo.py --device cuda --dtype bfloat16

The env's ``min_new_tokens`` masks EOS so that every episode writes exactly
``--new-tokens`` tokens, as ``generate`` does with ``min_new_tokens``. The rollout goes
through the native vector env (the agent's default) and, for comparison, through a list of
envs; the three take turns and each
reports its best of ``--repeats`` rounds, by wall time and by this process's CPU time
(which other jobs on a shared machine inflate less). The env's share is the time of
``env.reset`` and ``env.step`` in the vector rollout. CPU peak memory is the process's
peak RSS after each phase (it only grows, so later phases include earlier ones); CUDA's
is max_memory_allocated.
"""

from __future__ import annotations

import argparse
import copy
import math
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import torch

import textgym  # noqa: F401
from agents import LMPPOAgent
from agents.env_batch import EnvBatch
from agents.lm import load_causal_lm, tiny_causal_lm


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # kB on Linux


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


@dataclass
class Timing:
    """A function's best wall time and best CPU time (this process's, which a machine busy
    with other jobs inflates less) over some rounds, and its last result."""

    wall: float = math.inf
    cpu: float = math.inf
    result: Any = None


def interleaved(fns: dict[str, Callable[[], Any]], device: torch.device, repeats: int) -> dict[str, Timing]:
    """Each function's best times over ``repeats`` rounds (after a warm-up round), the
    functions taking turns so that a busy machine slows them alike."""
    timings = {name: Timing(result=fn()) for name, fn in fns.items()}  # warm-up
    for _ in range(repeats):
        for name, fn in fns.items():
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            wall, cpu = time.perf_counter(), time.process_time()
            timings[name].result = fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            timing = timings[name]
            timing.wall = min(timing.wall, time.perf_counter() - wall)
            timing.cpu = min(timing.cpu, time.process_time() - cpu)
    return timings


class EnvTimer:
    """Times ``envs.reset`` and ``envs.step`` of an EnvBatch: the env's share of a rollout."""

    def __init__(self, envs: EnvBatch):
        self.seconds, self.rollouts = [], 0
        for name in ("reset", "step"):
            setattr(envs, name, self._timed(getattr(envs, name), name == "reset"))

    def _timed(self, method: Callable, starts_a_rollout: bool) -> Callable:
        def timed_method(*args, **kwargs):
            if starts_a_rollout:
                self.seconds.append(0.0)
            start = time.perf_counter()
            result = method(*args, **kwargs)
            self.seconds[-1] += time.perf_counter() - start
            return result
        return timed_method

    def per_call(self) -> float:
        """The least env time of a rollout (as the rollout time is its best)."""
        return min(self.seconds)


def forward_share(model: torch.nn.Module, fn: Callable[[], Any], device: torch.device, repeats: int) -> float:
    """The share of ``fn``'s time spent in ``model``'s forward passes, in its fastest of
    ``repeats`` calls (both times from the same call, so that a busy machine cancels out)."""
    spent, started = [0.0], [0.0]

    def before(*_):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started[0] = time.perf_counter()

    def after(*_):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        spent[0] += time.perf_counter() - started[0]

    hooks = [model.register_forward_pre_hook(before), model.register_forward_hook(after)]
    fastest, share = math.inf, 0.0
    for _ in range(repeats):
        spent[0] = 0.0
        start = time.perf_counter()
        fn()
        total = time.perf_counter() - start
        if total < fastest:
            fastest, share = total, spent[0] / total
    for hook in hooks:
        hook.remove()
    return share


def layout_memory_mb(model, ref_bytes_per_param: int) -> dict[str, float]:
    """Training memory of weights + grads + Adam moments (fp32), without activations."""
    trunk = sum(p.numel() for p in model.parameters())
    head = model.config.hidden_size + 1
    trained = 4 * 4  # bytes per trained parameter: weight, grad, two Adam moments
    shared = (trunk + head) * trained + trunk * ref_bytes_per_param
    separate = (2 * trunk + head) * trained + trunk * ref_bytes_per_param
    return {"shared trunk (policy + value head, reference)": shared / 2**20,
            "separate policy, value model, reference": separate / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny", help="'tiny', 'smollm2' or a local model directory")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--compile", action="store_true", help="compile_decode=True: torch.compile the one-token steps")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    device = torch.device(args.device)

    vocab = model = None
    if args.model != "tiny":
        model, vocab = load_causal_lm(args.model)

    env = gym.make("TokenGen-v0", task="keywords", vocab=vocab, max_new_tokens=args.new_tokens,
                   min_new_tokens=args.new_tokens)
    vocab = env.unwrapped.vocab
    env_vocab_size, eos_id = len(vocab), vocab.eos_id
    if model is None:
        model = tiny_causal_lm(vocab)
    agent = LMPPOAgent(env, model=model, num_envs=args.batch, device=args.device, dtype=args.dtype,
                       n_epochs=1, n_minibatches=1, max_approx_kl=None, compile_decode=args.compile)
    # the agent's rollouts go through the native vector env; the list of envs is for comparison
    listed = EnvBatch([copy.deepcopy(env) for _ in range(args.batch)])
    native = agent.envs
    seeds = list(range(args.batch))
    n_tokens = args.batch * args.new_tokens

    contexts = [list(reading.context) for reading in agent.view.read_rows(native.reset(seeds), range(args.batch))]
    width = max(map(len, contexts))
    input_ids = torch.tensor([[vocab.pad_id] * (width - len(c)) + c for c in contexts], device=device)
    attention = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in contexts], device=device)

    @torch.no_grad()
    def generate():
        return agent.model.generate(input_ids=input_ids, attention_mask=attention, do_sample=True, top_k=0,
                                    max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                                    pad_token_id=vocab.pad_id, eos_token_id=eos_id)

    def rollout(envs):
        agent.envs = envs
        return agent.rollout(seeds)

    start = time.perf_counter()
    rollout(native)
    first_s = time.perf_counter() - start
    env_seconds = EnvTimer(native)
    reset_peak(device)
    timings = interleaved({"native": lambda: rollout(native), "list": lambda: rollout(listed), "generate": generate},
                          device, args.repeats)
    native_t, list_t, generate_t = timings["native"], timings["list"], timings["generate"]
    rollout_mem = peak_memory_mb(device)
    env_share = env_seconds.per_call() / native_t.wall

    generate_forward = forward_share(agent.model, generate, device, args.repeats)

    reset_peak(device)
    batch = native_t.result.episodes(native_t.result.complete)
    update_s = interleaved({"update": lambda: agent.update(batch, agent.prepare(batch))}, device, 1)["update"].wall
    update_mem = peak_memory_mb(device)

    n_params = sum(p.numel() for p in agent.model.parameters())
    print(f"model: {args.model} ({n_params / 1e6:.1f}M parameters, vocab {env_vocab_size}), device: {device} "
          f"({torch.get_num_threads()} torch thread), dtype {args.dtype}, batch {args.batch}, "
          f"{args.new_tokens} new tokens, compile_decode={args.compile}\n")
    print("| measure | value |\n|---|---|")
    print(f"| rollout through env.step, {type(native.envs).__name__} (tokens/s) | {n_tokens / native_t.wall:,.0f} |")
    print(f"| rollout through env.step, a list of {args.batch} envs (tokens/s) | {n_tokens / list_t.wall:,.0f} |")
    print(f"| model.generate (tokens/s) | {n_tokens / generate_t.wall:,.0f} |")
    print(f"| **rollout / generate** (vector env; list) | **{generate_t.wall / native_t.wall:.2f}x**; "
          f"{generate_t.wall / list_t.wall:.2f}x |")
    print(f"| rollout / generate by CPU time (vector env; list) | {generate_t.cpu / native_t.cpu:.2f}x; "
          f"{generate_t.cpu / list_t.cpu:.2f}x |")
    print(f"| env.reset + env.step share of the vector rollout | {env_share:.0%} |")
    print(f"| model forward share of generate; the ceiling of a rollout that runs the same forwards, uncompiled "
          f"| {generate_forward:.0%}; {1 / generate_forward:.2f}x |")
    print(f"| first rollout{', compiling' if args.compile else ''} (s) | {first_s:.1f} |")
    print(f"| PPO update, 1 epoch on the rollout (s) | {update_s:.2f} |")
    print(f"| peak memory after rollouts and generate / update (MB) | {rollout_mem:,.0f} / {update_mem:,.0f} |")
    ref_bytes = 2 if args.dtype == "bfloat16" else 4
    print("\n| layout | weights + grads + Adam (MB) |\n|---|---|")
    for layout, megabytes in layout_memory_mb(agent.model, ref_bytes).items():
        print(f"| {layout} | {megabytes:,.1f} |")


if __name__ == "__main__":
    main()
