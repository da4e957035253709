"""Data-parallel LMPPOAgent: two gloo processes under torchrun update the policy exactly as
one process does on both rollouts, and only rank 0 writes checkpoints and logs.

Run as a script, this file is the worker that torchrun starts on every rank."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
import torch

import textgym  # noqa: F401
from agents import LMPPOAgent
from agents.lm import tiny_causal_lm
from agents.lm_rollout import Rollout

ROOT = Path(__file__).resolve().parents[2]
# 3 minibatches of 4 + 4 episodes: most minibatches mix both ranks' episodes, in uneven numbers
CONFIG = {"num_envs": 4, "n_epochs": 2, "n_minibatches": 3, "max_approx_kl": None, "learning_rate": 1e-3}
EARLY_STOP = 1e-6  # the second update stops after its second minibatch (the first one's approx KL is 0)


def make_agent(seed_of_weights: int, **kwargs) -> LMPPOAgent:
    env = gym.make("TokenGen-Copy-v0")
    torch.manual_seed(seed_of_weights)
    return LMPPOAgent(env, model=tiny_causal_lm(env.unwrapped.vocab, n_layer=1, n_embd=32, n_head=2), **CONFIG, **kwargs)


def two_updates(agent: LMPPOAgent, batch: Rollout) -> None:
    """A full update (2 epochs x 3 minibatches), then one the approx-KL limit stops early."""
    prepared = agent.prepare(batch)
    agent.update(batch, prepared)
    agent.config.max_approx_kl = EARLY_STOP
    agent.update(batch, prepared)
    agent.config.max_approx_kl = None


def worker(out: Path) -> None:
    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])
    agent = make_agent(seed_of_weights=rank, log_path=out / f"metrics{rank}.csv")  # rank 0's weights must win
    assert agent.ranks.world_size == 2 and agent.ranks.rank == rank
    batch = agent.rollout([100 * rank + i for i in range(4)])
    two_updates(agent, batch)
    updated = {k: v.clone() for k, v in agent.policy.state_dict().items()}
    # a rank whose rollout finished no episode (the step budget cut them all) joins the update with none
    mine = batch if rank == 0 else batch.episodes(torch.zeros(len(batch.readings), dtype=torch.bool))
    agent.update(mine, agent.prepare(mine))
    rank_0_alone = {k: v.clone() for k, v in agent.policy.state_dict().items()}

    writes = out / "writers.txt"
    write = agent._write_checkpoint

    def logged_write(path):
        with writes.open("a") as log:
            log.write(f"{rank}\n")
        write(path)

    agent._write_checkpoint = logged_write
    agent.save(out / "checkpoint")
    written_when_save_returned = (out / "checkpoint" / "agent.json").is_file()

    agent.learn(60)
    result = {"batch": batch, "updated": updated, "rank_0_alone": rank_0_alone, "written": written_when_save_returned,
              "learned": agent.policy.state_dict(), "num_timesteps": agent.num_timesteps,
              "update_log": agent.update_log.records, "episodes": len(agent.log.records)}
    (out / f"rank{rank}.pkl").write_bytes(pickle.dumps(result))


def concatenated(first: Rollout, second: Rollout) -> Rollout:
    """Both rollouts as one batch, rank 0's episodes first, columns padded to the longer."""
    width = max(first.actions.shape[1], second.actions.shape[1])

    def cat(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:  # (B, T) or (B, T, A), zeros / False after T
        return torch.cat([torch.nn.functional.pad(t, (0, 0) * (t.dim() - 2) + (0, width - t.shape[1])) for t in (a, b)])

    return Rollout(readings=first.readings + second.readings, actions=cat(first.actions, second.actions),
                   legal=cat(first.legal, second.legal), logprobs=cat(first.logprobs, second.logprobs),
                   env_rewards=cat(first.env_rewards, second.env_rewards), valid=cat(first.valid, second.valid),
                   complete=torch.cat([first.complete, second.complete]), infos=first.infos + second.infos,
                   n_steps=first.n_steps + second.n_steps)


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             __file__, str(out)], capture_output=True, text=True, timeout=180, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, [pickle.loads((out / f"rank{rank}.pkl").read_bytes()) for rank in range(2)]


def test_two_processes_update_as_one_process_on_both_rollouts(ranks):
    _, (rank0, rank1) = ranks
    assert not torch.equal(rank0["batch"].actions[:, :1], rank1["batch"].actions[:, :1])  # each rank its own episodes
    torch.set_num_threads(1)
    single = make_agent(seed_of_weights=0, distributed=False)
    before = {k: v.clone() for k, v in single.policy.state_dict().items()}
    two_updates(single, concatenated(rank0["batch"], rank1["batch"]))
    after = single.policy.state_dict()
    moved = max((after[k] - before[k]).abs().max().item() for k in after)
    assert moved > 1e-4
    for name, value in after.items():
        torch.testing.assert_close(rank0["updated"][name], value, atol=1e-6, rtol=1e-5, msg=name)
        torch.testing.assert_close(rank1["updated"][name], rank0["updated"][name], atol=0, rtol=0, msg=name)
    single.update(rank0["batch"], single.prepare(rank0["batch"]))  # and then on rank 0's episodes alone
    for name, value in single.policy.state_dict().items():
        torch.testing.assert_close(rank0["rank_0_alone"][name], value, atol=1e-6, rtol=1e-5, msg=name)
        torch.testing.assert_close(rank1["rank_0_alone"][name], value, atol=1e-6, rtol=1e-5, msg=name)


def test_only_rank_0_writes_the_checkpoint_and_the_others_wait_for_it(ranks):
    out, (rank0, rank1) = ranks
    assert (out / "writers.txt").read_text() == "0\n"
    assert rank0["written"] and rank1["written"]
    loaded = LMPPOAgent.load(out / "checkpoint", env=gym.make("TokenGen-Copy-v0"))
    for name, value in loaded.policy.state_dict().items():
        torch.testing.assert_close(value, rank0["rank_0_alone"][name], atol=0, rtol=0)


def test_learn_keeps_the_ranks_in_step_and_logs_from_rank_0_only(ranks):
    out, (rank0, rank1) = ranks
    assert rank0["num_timesteps"] == rank1["num_timesteps"] >= 60  # steps of both ranks together
    def pooled(records):  # all but each rank's own timings
        return [{k: v for k, v in record.items() if not k.endswith("per_second")} for record in records]

    assert len(rank0["update_log"]) >= 1 and pooled(rank0["update_log"]) == pooled(rank1["update_log"])
    for name, value in rank0["learned"].items():
        torch.testing.assert_close(rank1["learned"][name], value, atol=0, rtol=0)
    assert (out / "metrics0.csv").is_file() and not (out / "metrics1.csv").exists()
    rows = (out / "metrics0.csv").read_text().splitlines()
    assert len(rows) == 1 + rank0["episodes"]  # rank 0's own episodes, one row each


EXIT_CLEANUP = """
import atexit, os, torch.distributed as dist, torch
from agents.distributed import Ranks
os.environ.update(RANK="0", WORLD_SIZE="1", MASTER_ADDR="127.0.0.1", MASTER_PORT="0")
Ranks(enabled=True, device=torch.device("cpu"))
assert dist.is_initialized()
atexit._run_exitfuncs()
print("destroyed" if not dist.is_initialized() else "still initialised")
"""


def test_a_group_the_agent_made_is_destroyed_at_exit():
    # a gloo group alive at interpreter teardown aborts the process about one run in three
    result = subprocess.run([sys.executable, "-c", EXIT_CLEANUP], capture_output=True, text=True, timeout=60,
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "destroyed"


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
