"""Training memory of LMPPOAgent's layouts: weights + grads + Adam state, no activations.

    python benchmarks/lm_memory.py                     # SmolLM2-135M (offline), counted
    python benchmarks/lm_memory.py --measure           # after one real PPO update (slower)
    python benchmarks/lm_memory.py --model tiny --lora-r 4

Each layout is an agent on TokenGen-Keywords: a full fine-tune with a separate value model
and a reference copy, a full fine-tune with the value head on the policy's trunk and a
reference copy, and LoRA (the value head on the adapted trunk, the reference being the same
trunk with the adapters off). Weights are every distinct tensor the agent holds (policy,
reference, value model; tied weights once). Grads and Adam's two moments are counted for
the parameters that train, in their dtypes; ``--measure`` runs one update and sums the
gradients and optimizer state that it left instead.
"""

from __future__ import annotations

import argparse

import gymnasium as gym
import torch

import textgym  # noqa: F401
from agents import LMPPOAgent
from agents.lm import load_causal_lm, tiny_causal_lm

MB = 2**20


def agent_memory(agent: LMPPOAgent, measure: bool) -> dict[str, float]:
    """MiB of the agent's distinct weights, of its gradients and of its Adam state."""
    modules = [agent.policy, agent.reference] + ([agent.mask_policy] if agent.mask_policy is not None else [])
    weights = {p.data_ptr(): p for module in modules for p in module.parameters()}
    trained = [p for p in agent.policy.parameters() if p.requires_grad]
    if measure:
        batch = agent.rollout(list(range(agent.envs.n)))
        agent.update(batch, agent.prepare(batch))
        agent.optimizer.zero_grad(set_to_none=False)  # keeps the grad buffers allocated, as between steps
        grads = sum(p.grad.numel() * p.grad.element_size() for p in trained if p.grad is not None)
        state = sum(t.numel() * t.element_size() for s in agent.optimizer.state.values() for t in s.values()
                    if torch.is_tensor(t) and t.dim() > 0)
    else:
        grads = sum(p.numel() * p.element_size() for p in trained)
        state = 2 * grads  # Adam's first and second moments, in the parameters' dtype
    return {"weights": sum(p.numel() * p.element_size() for p in weights.values()) / MB, "grads": grads / MB,
            "adam": state / MB, "trained": sum(p.numel() for p in trained)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2", help="'smollm2', 'tiny' or a local causal LM directory")
    parser.add_argument("--lora-r", type=int, default=8)
    parser.add_argument("--lora-targets", nargs="+", default=None, help="module names to adapt (default: peft's)")
    parser.add_argument("--measure", action="store_true", help="run one PPO update and read the real grads and state")
    args = parser.parse_args()
    torch.manual_seed(0)

    def agent(**config) -> LMPPOAgent:
        if args.model == "tiny":
            env = gym.make("TokenGen-Keywords-v0")
            model = tiny_causal_lm(env.unwrapped.vocab)
        else:
            model, vocab = load_causal_lm(args.model)
            env = gym.make("TokenGen-Keywords-v0", vocab=vocab, max_new_tokens=4)
        return LMPPOAgent(env, model=model, num_envs=2, n_epochs=1, n_minibatches=1, **config)

    layouts = {
        "full, separate value model + reference copy": {"value_model": "separate"},
        "full, shared trunk + reference copy": {},
        f"LoRA r={args.lora_r}, shared trunk, reference = adapters off": {"lora_r": args.lora_r,
                                                                          "lora_target_modules": args.lora_targets},
    }
    rows = {name: agent_memory(agent(**config), args.measure) for name, config in layouts.items()}
    shared = rows["full, shared trunk + reference copy"]
    shared_total = shared["weights"] + shared["grads"] + shared["adam"]
    print(f"{args.model}, fp32, {'measured after one update' if args.measure else 'counted'}; MiB\n")
    print("| layout | trained params | weights | grads | Adam | total | vs shared trunk |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, row in rows.items():
        total = row["weights"] + row["grads"] + row["adam"]
        print(f"| {name} | {row['trained']:,} | {row['weights']:.0f} | {row['grads']:.1f} | {row['adam']:.1f} "
              f"| {total:.0f} | {total / shared_total:.2f}x |")


if __name__ == "__main__":
    main()
