"""TRL's GRPOTrainer on a textgym task: an MLE-warm-started tiny GPT-2 learns the keywords task from BLEU.

The lesson: ``textgym.trl`` hands a textgym task to TRL as a prompt dataset
(``textgym.trl.dataset``), a textgym metric as a TRL reward function
(``textgym.trl.reward("bleu")``), and the env's word vocabulary as a transformers tokenizer
(``textgym.trl.word_tokenizer``), so a TRL user trains with their own trainer. Plain GRPO
scores whole completions. ``--dense`` writes every completion through ``env.step``
instead (``rollout_func=EnvRollout(...)``, sampling only legal tokens) and trains on the
env's dense per-token BLEU rewards (``DenseGRPOTrainer``), which TRL's own interface
cannot express. Prints samples and the mean sampled BLEU on the train prompts before and
after.

Needs TRL (``pip install 'textgym[trl]'``); without it the script says so and exits 0.

    python examples/10_trl_grpo_keywords.py           # 2 minutes on 2 shared CPU cores: sampled BLEU 0.112 -> 0.126
    python examples/10_trl_grpo_keywords.py --dense   # the same budget on per-token rewards: 0.112 -> 0.134
    TEXTGYM_QUICK=1 python examples/10_trl_grpo_keywords.py   # a smoke run, 20 s
"""

import argparse
import os
import sys
import tempfile

import numpy as np
import torch

try:
    from trl import GRPOConfig, GRPOTrainer
except ImportError:
    print("skipped: TRL is not installed (pip install 'textgym[trl]')")
    sys.exit(0)

import textgym.trl as tt
from agents.lm import pretrain_mle, tiny_causal_lm

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--dense", action="store_true", help="train on the env's per-token rewards (DenseGRPOTrainer)")
args = parser.parse_args()
QUICK = os.environ.get("TEXTGYM_QUICK") == "1"
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is experimental in TRL 1.16
torch.set_num_threads(1)  # one thread per process: several torch processes share the cores
torch.manual_seed(0)

TASK, TASK_KWARGS = "TokenGen-Keywords-v0", {"n_subjects": 5, "n_verbs": 4, "n_objects": 5}
GENERATIONS = 8  # completions per prompt: GRPO's group
STEPS = 2 if QUICK else 80  # each 8 prompts x 8 completions, about 6 tokens each: 80 steps ~ 30k tokens
MLE_EPOCHS = 1 if QUICK else 4

# the same task three ways: an env (what the rollout steps), a dataset, a tokenizer
rollout = tt.EnvRollout(TASK, task_kwargs=TASK_KWARGS, reward="bleu", reward_mode="dense")
vocab = rollout.env.vocab
train = tt.dataset(TASK, task_kwargs=TASK_KWARGS)
tokenizer = tt.word_tokenizer(vocab)
print(f"{len(train)} prompts, e.g. {train[0]['prompt']!r} -> {train[0]['references'][0]!r}; {len(vocab)} tokens")

model = tiny_causal_lm(vocab, n_layer=2, n_embd=64, n_head=2)
fit = pretrain_mle(model, rollout.env.task, vocab, epochs=MLE_EPOCHS, batch_size=64, learning_rate=1e-3)
print(f"MLE warm start: perplexity {fit['perplexity']:.2f} on the train references")

output_dir = tempfile.mkdtemp(prefix="textgym_trl_")  # TRL wants one; nothing is saved in it
config = GRPOConfig(output_dir=output_dir, max_steps=STEPS, per_device_train_batch_size=8 * GENERATIONS,
                    num_generations=GENERATIONS, max_completion_length=rollout.env.max_new_tokens, learning_rate=3e-4,
                    beta=0.0, report_to="none", use_cpu=True, logging_steps=max(1, STEPS // 8), save_strategy="no",
                    seed=0, disable_tqdm=QUICK)
if args.dense:
    trainer = tt.DenseGRPOTrainer(model=model, reward_funcs=[tt.episode_return], args=config, train_dataset=train,
                                  processing_class=tokenizer, rollout_func=rollout)
else:
    trainer = GRPOTrainer(model=model, reward_funcs=[tt.reward("bleu")], args=config, train_dataset=train,
                          processing_class=tokenizer)


def sampled_bleu(title: str) -> float:
    """Mean BLEU of one sampled completion per train prompt (twice over), written through
    the env: a dense reward's per-token rewards sum to the BLEU of the text."""
    prompts = list(train["prompt"]) * 2
    out = rollout(prompts, trainer)
    scores = [sum(rewards) for rewards in out["token_rewards"]]
    print(title)
    for prompt, ids, score in list(zip(prompts, out["completion_ids"], scores))[:4]:
        print(f"  {prompt!r:28} -> {vocab.decode(ids)!r:40} BLEU {score:.2f}")
    return float(np.mean(scores))


before = sampled_bleu("samples after the MLE warm start:")
trainer.train()
after = sampled_bleu("samples after GRPO:")
tokens = trainer.state.num_input_tokens_seen
loop = "DenseGRPOTrainer on per-token env rewards" if args.dense else "GRPOTrainer on whole-completion BLEU"
print(f"{loop}: mean sampled BLEU on {len(train)} train prompts {before:.3f} -> {after:.3f} "
      f"({STEPS} steps, {tokens:.0f} prompt + completion tokens)")
print("step  reward  completion length")
for record in trainer.state.log_history:
    if "reward" in record:
        print(f"{record['step']:4d}  {record['reward']:6.3f}  {record['completions/mean_length']:.2f}")
