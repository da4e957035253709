"""LM-PPO speed and memory: rollout tokens/s through ``env.step`` (one KV-cached forward per
step for the batch of envs) against ``model.generate`` tokens/s for the same model, batch,
prompts and length, measured in one run; peak memory; the time of one PPO update; and the
memory of the shared-trunk layout against separate policy / value / reference copies.

    python benchmarks/lm_ppo.py                          # tiny GPT-2 on CPU
    python benchmarks/lm_ppo.py --model smollm2 --batch 8 --new-tokens 16
    python benchmarks/lm_ppo.py --device cuda --dtype bfloat16

EOS is masked so every episode writes exactly ``--new-tokens`` tokens, as ``generate``
does with ``min_new_tokens``. CPU peak memory is the process's peak RSS after each phase
(it only grows, so later phases include earlier ones); CUDA's is max_memory_allocated.
"""

from __future__ import annotations

import argparse
import resource
import time

import gymnasium as gym
import numpy as np
import torch

import textgym  # noqa: F401
from agents import LMPPOAgent
from agents.lm import load_causal_lm, prompt_context, tiny_causal_lm


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # kB on Linux


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)


def timed(fn, device: torch.device, repeats: int) -> tuple[float, object]:
    fn()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        result = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / repeats, result


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
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    device = torch.device(args.device)

    vocab = model = None
    if args.model != "tiny":
        model, vocab = load_causal_lm(args.model)

    def no_eos(prompt_ids, output_ids):
        mask = np.ones(env_vocab_size, dtype=bool)
        mask[eos_id] = False
        return mask

    env = gym.make("TokenGen-v0", task="keywords", vocab=vocab, max_new_tokens=args.new_tokens, mask_fn=no_eos)
    env_vocab_size, eos_id = env.action_space.n, env.unwrapped.vocab.eos_id
    if model is None:
        model = tiny_causal_lm(env.unwrapped.vocab)
    envs = [gym.make("TokenGen-v0", task="keywords", vocab=env.unwrapped.vocab, max_new_tokens=args.new_tokens,
                     mask_fn=no_eos) for _ in range(args.batch)]
    agent = LMPPOAgent(env, model=model, envs=envs, num_envs=args.batch, device=args.device, dtype=args.dtype,
                       n_epochs=1, n_minibatches=1, max_approx_kl=None)
    seeds = list(range(args.batch))
    n_tokens = args.batch * args.new_tokens

    reset_peak(device)
    rollout_s, batch = timed(lambda: agent.rollout(seeds), device, args.repeats)
    rollout_mem = peak_memory_mb(device)

    vocab = env.unwrapped.vocab
    contexts = [prompt_context(vocab.encode(e.unwrapped.example.prompt), vocab) for e in envs]
    width = max(map(len, contexts))
    input_ids = torch.tensor([[vocab.pad_id] * (width - len(c)) + c for c in contexts], device=device)
    attention = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in contexts], device=device)

    @torch.no_grad()
    def generate():
        return agent.model.generate(input_ids=input_ids, attention_mask=attention, do_sample=True, top_k=0,
                                    max_new_tokens=args.new_tokens, min_new_tokens=args.new_tokens,
                                    pad_token_id=vocab.pad_id, eos_token_id=eos_id)

    reset_peak(device)
    generate_s, _ = timed(generate, device, args.repeats)
    generate_mem = peak_memory_mb(device)

    reset_peak(device)
    batch = batch.episodes(batch.complete)
    update_s, _ = timed(lambda: agent.update(batch, agent.prepare(batch)), device, 1)
    update_mem = peak_memory_mb(device)

    n_params = sum(p.numel() for p in agent.model.parameters())
    print(f"model: {args.model} ({n_params / 1e6:.1f}M parameters, vocab {env_vocab_size}), device: {device} "
          f"({torch.get_num_threads()} torch thread), dtype {args.dtype}, batch {args.batch}, "
          f"{args.new_tokens} new tokens\n")
    print("| measure | value |\n|---|---|")
    print(f"| rollout through env.step (tokens/s) | {n_tokens / rollout_s:,.0f} |")
    print(f"| model.generate (tokens/s) | {n_tokens / generate_s:,.0f} |")
    print(f"| rollout / generate | {generate_s / rollout_s:.2f}x |")
    print(f"| PPO update, 1 epoch on the rollout (s) | {update_s:.2f} |")
    print(f"| peak memory after rollout / generate / update (MB) | {rollout_mem:,.0f} / {generate_mem:,.0f} / {update_mem:,.0f} |")
    ref_bytes = 2 if args.dtype == "bfloat16" else 4
    print("\n| layout | weights + grads + Adam (MB) |\n|---|---|")
    for layout, megabytes in layout_memory_mb(agent.model, ref_bytes).items():
        print(f"| {layout} | {megabytes:,.1f} |")


if __name__ == "__main__":
    main()
