"""TRL integration: textgym's rewards, tasks and envs for TRL's ``GRPOTrainer``.

Importing this module imports TRL (the ``trl`` extra: ``pip install 'textgym[trl]'``);
``import textgym`` does not.

    from trl import GRPOConfig, GRPOTrainer
    import textgym.trl as tt

    train = tt.dataset("keywords")                         # "prompt", "references", "source"
    trainer = GRPOTrainer(model, reward_funcs=[tt.reward("bleu")], train_dataset=train,
                          processing_class=tokenizer, args=GRPOConfig(...))

- :func:`reward` makes any textgym reward (a metric name, a callable, a weighted list)
  a batched TRL reward function that reads the dataset's ``references`` and ``source``.
- :func:`dataset` makes any TokenGen task (a built-in name, a file, an env id) a TRL
  prompt dataset; :func:`word_tokenizer` gives a word-vocabulary env's tokenizer to TRL.
- :class:`EnvRollout` is a GRPO ``rollout_func`` that writes each completion through
  ``env.step``: tokens are sampled among the env's legal actions (``info["action_mask"]``)
  and every token gets the env's reward, passed on as ``token_rewards``.
  :func:`episode_return` pays their sum, which for a dense reward is the sparse one.
  :class:`DenseGRPOTrainer` trains on the per-token rewards themselves.

What TRL 1.16 cannot take: ``GRPOTrainer`` scores whole completions (one advantage per
completion), so the per-token rewards need :class:`DenseGRPOTrainer`'s per-token
advantages. Its loss recomputes log-probs over the whole vocabulary, so the action mask
shapes sampling but not the policy's log-probs (illegal tokens are PAD, BOS and UNK, which
a warm-started model rarely writes). ``environment_factory`` is TRL's tool-calling
interface (chat templates and tool methods), not a token-level env, so it is not used.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from textgym.envs.token_gen import TokenGenEnv
from textgym.rewards import make_reward
from textgym.tasks import TextExample
from textgym.vocab import Vocabulary, WordVocabulary

try:
    from trl import GRPOTrainer
except ImportError:
    raise ImportError("textgym.trl needs TRL: pip install 'textgym[trl]'") from None

__all__ = ["DenseGRPOTrainer", "EnvRollout", "TRLReward", "dataset", "episode_return", "make_env", "reward",
           "word_tokenizer"]


def make_env(task: Any = "copy", split: str = "train", **env_kwargs: Any) -> TokenGenEnv:
    """The TokenGen env behind a TRL dataset or rollout: ``task`` is a TokenGen env id
    (``"TokenGen-Keywords-v0"``) or any ``task`` argument of ``TokenGen-v0`` (a built-in
    name, a ``.jsonl`` path, a list of rows, a ``Task``)."""
    if isinstance(task, str) and task in gym.registry:
        env = gym.make(task, split=split, **env_kwargs)
    else:
        env = gym.make("TokenGen-v0", task=task, split=split, **env_kwargs)
    if not isinstance(env.unwrapped, TokenGenEnv):
        raise ValueError(f"textgym.trl works on TokenGen envs (text generation); {task!r} makes a "
                         f"{type(env.unwrapped).__name__}")
    return env.unwrapped


def prompt_text(vocab: Vocabulary, example: TextExample) -> str:
    """The prompt as the policy's tokenizer reads it: for a word vocabulary the space-join
    of its words (what :func:`word_tokenizer` splits back into the env's ids), else as is."""
    if isinstance(vocab, WordVocabulary):
        return " ".join(vocab.tokenize(example.prompt))
    return example.prompt


def dataset(task: Any = "copy", split: str = "train", **env_kwargs: Any):
    """A TokenGen task's ``split`` as a TRL prompt dataset (a ``datasets.Dataset``).

    Columns: ``prompt`` (see :func:`prompt_text`), ``references`` (list of str),
    ``source`` (the example's prompt, what a reward's ``source`` is on the env), and
    ``concepts`` when the task has them (CommonGen). ``env_kwargs`` are the env's (for
    example ``task_kwargs``), so that the dataset holds the same examples as the env.
    """
    from datasets import Dataset

    env = make_env(task, split, **env_kwargs)
    rows = {
        "prompt": [prompt_text(env.vocab, e) for e in env.examples],
        "references": [list(e.references) for e in env.examples],
        "source": [e.prompt for e in env.examples],
    }
    if any(e.concepts for e in env.examples):
        rows["concepts"] = [list(e.concepts) for e in env.examples]
    return Dataset.from_dict(rows)


def word_tokenizer(vocab: WordVocabulary):
    """A transformers tokenizer with ``vocab``'s ids, for TRL (which tokenizes prompts and
    decodes completions itself): it splits the space-joined words of :func:`prompt_text`,
    appends BOS (where textgym's LMs start writing, as ``agents.lm.prompt_context``) and
    decodes by joining words with spaces, as ``vocab.decode`` does. Pads on the left."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    if not isinstance(vocab, WordVocabulary):
        raise TypeError(f"word_tokenizer takes a WordVocabulary, not {type(vocab).__name__}; an env made with a "
                        "transformers tokenizer (vocab=tokenizer) already has one")
    tokens = {token: i for i, token in enumerate(vocab.tokens)}
    backend = Tokenizer(models.WordLevel(tokens, unk_token=vocab.id_to_token(vocab.unk_id)))
    if vocab.lowercase:
        backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    bos = vocab.id_to_token(vocab.bos_id)
    backend.post_processor = processors.TemplateProcessing(single=f"$A {bos}", special_tokens=[(bos, vocab.bos_id)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token=vocab.id_to_token(vocab.pad_id), bos_token=bos,
        eos_token=vocab.id_to_token(vocab.eos_id), unk_token=vocab.id_to_token(vocab.unk_id), padding_side="left")


class TRLReward:
    """A textgym reward as a TRL reward function: ``(prompts, completions, references,
    source, **kwargs) -> list[float]``, scored in one ``Reward.batch`` call. Its
    ``__name__`` (what TRL logs under ``rewards/``) is the reward's, e.g. ``bleu`` or
    ``0.67*bleu+0.33*coverage``."""

    def __init__(self, spec: Any):
        self.reward = make_reward(spec)
        self.__name__ = "+".join(name if w == 1 else f"{w:.2g}*{name}" for name, _, w in self.reward.terms)

    def __call__(self, prompts: Sequence[Any], completions: Sequence[Any], references: Sequence[Sequence[str]] | None = None,
                 source: Sequence[str] | None = None, **kwargs: Any) -> list[float]:
        if references is None:
            references = [()] * len(completions)
        if source is None:
            source = [_text(prompt) for prompt in prompts]
        scored = self.reward.batch([_text(c) for c in completions], references, source)
        return [value for value, _ in scored]

    def __repr__(self) -> str:
        return f"TRLReward({self.reward!r})"


def reward(spec: Any) -> TRLReward:
    """``spec`` (anything ``textgym.rewards.make_reward`` takes: ``"bleu"``, a callable,
    ``["bleu", ("coverage", 0.5)]``, ...) as a TRL reward function for ``reward_funcs``.
    It reads the ``references`` and ``source`` columns of a :func:`dataset` (without
    ``source``, the prompt is the source)."""
    return TRLReward(spec)


def _text(item: Any) -> str:
    """A TRL prompt or completion as text: a str, or the last message's content of a
    conversational one."""
    return item if isinstance(item, str) else item[-1]["content"]


def episode_return(prompts: Sequence[Any], completions: Sequence[Any], token_rewards: Sequence[Sequence[float]],
                   **kwargs: Any) -> list[float]:
    """A TRL reward function for :class:`EnvRollout`: each completion's env return, the
    sum of its per-token rewards (for a dense reward, the sparse reward of the text)."""
    return [float(sum(rewards)) for rewards in token_rewards]


class EnvRollout:
    """A GRPO ``rollout_func`` (``GRPOTrainer(..., rollout_func=EnvRollout(...))``) that
    writes every completion through a TokenGen env's ``step``.

    The env is :func:`make_env` of the arguments; its vocabulary must be the policy's
    tokens (the default word vocabulary with :func:`word_tokenizer`, or ``vocab=tokenizer``).
    Each prompt resets an env on the example of that prompt text; then one token per step
    is sampled from the policy (``temperature``, ``top_k``, ``top_p`` of the trainer's
    config) among the env's legal actions, and the env pays it. The output holds the
    fields TRL needs (``prompt_ids``, ``completion_ids``, ``logprobs``: of the masked
    distribution) and ``token_rewards``, one env reward per completion token, which TRL
    hands to the reward functions (:func:`episode_return`). A completion is at most the
    env's ``max_new_tokens`` or the config's ``max_completion_length``, the smaller.
    """

    def __init__(self, task: Any = "copy", split: str = "train", seed: int = 0, **env_kwargs: Any):
        self.env = make_env(task, split, **env_kwargs)
        self._envs = [self.env]
        self._index = {}
        for i, example in enumerate(self.env.examples):
            self._index.setdefault(prompt_text(self.env.vocab, example), i)  # the first of equal prompts
        self.generator = torch.Generator().manual_seed(seed)
        self._episodes = 0

    def __call__(self, prompts: Sequence[Any], trainer: Any) -> dict[str, list]:
        model = trainer.accelerator.unwrap_model(trainer.model)
        vocab, texts = self.env.vocab, [_text(p) for p in prompts]
        unknown = next((t for t in texts if t not in self._index), None)
        if unknown is not None:
            raise ValueError(f"prompt {unknown!r} is not a prompt of the env's {self.env.split!r} split; make the "
                             "dataset with textgym.trl.dataset() of the same task, split and env_kwargs")
        n_model = int(model.get_output_embeddings().weight.shape[0])
        if n_model != len(vocab) or trainer.processing_class.eos_token_id != vocab.eos_id:
            raise ValueError(f"the policy scores {n_model} tokens (EOS {trainer.processing_class.eos_token_id}) but the "
                             f"env has {len(vocab)} actions (EOS {vocab.eos_id}): use word_tokenizer(env.vocab) and a "
                             "model of len(env.vocab) tokens, or make the env with vocab=the policy's tokenizer")
        while len(self._envs) < len(texts):
            self._envs.append(copy.deepcopy(self.env))
        envs = self._envs[: len(texts)]
        prompt_ids = trainer.processing_class(text=texts)["input_ids"]
        masks = []
        for env, text in zip(envs, texts):
            _, info = env.reset(seed=self._episodes, options={"index": self._index[text]})
            self._episodes += 1
            masks.append(_legal(env, info))
        args = trainer.args
        limit = min(self.env.max_new_tokens, args.max_completion_length or self.env.max_new_tokens)
        completions, logprobs, rewards = _sample(model, prompt_ids, envs, np.stack(masks), limit, vocab.pad_id,
                                                 args.temperature, args.top_k, args.top_p, self.generator)
        return {"prompt_ids": prompt_ids, "completion_ids": completions, "logprobs": logprobs, "token_rewards": rewards}


def _legal(env: TokenGenEnv, info: dict) -> np.ndarray:
    mask = info.get("action_mask")
    return np.ones(env.action_space.n, dtype=bool) if mask is None else mask.astype(bool)


@torch.no_grad()
def _sample(model: Any, prompt_ids: list[list[int]], envs: list[TokenGenEnv], legal: np.ndarray, limit: int,
            pad_id: int, temperature: float, top_k: int, top_p: float,
            generator: torch.Generator) -> tuple[list[list[int]], list[list[float]], list[list[float]]]:
    """Sample one completion per env, one token per ``env.step``, with one incremental
    forward pass of the batch per step (left-padded prompts, a KV cache)."""
    from transformers import DynamicCache

    device = next(model.parameters()).device
    n, width = len(prompt_ids), max(map(len, prompt_ids))
    input_ids = torch.full((n, width), pad_id, dtype=torch.long)
    attention = torch.zeros((n, width), dtype=torch.long)
    for row, ids in enumerate(prompt_ids):
        input_ids[row, width - len(ids):] = torch.tensor(ids)
        attention[row, width - len(ids):] = 1
    positions = (attention.cumsum(1) - 1).clamp(min=0)
    completions: list[list[int]] = [[] for _ in range(n)]
    logprobs: list[list[float]] = [[] for _ in range(n)]
    rewards: list[list[float]] = [[] for _ in range(n)]
    active = np.ones(n, dtype=bool)
    cache = DynamicCache(config=model.config)
    was_training = model.training
    model.eval()
    for _ in range(limit):
        out = model(input_ids=input_ids.to(device), attention_mask=attention.to(device),
                    position_ids=positions.to(device), cache=cache, use_cache=True, logits_to_keep=1)
        logits = out.logits[:, -1].float().cpu() / temperature
        logits = logits.masked_fill(~torch.from_numpy(legal), float("-inf"))
        logits = _top_k_top_p(logits, top_k, top_p)
        log_probs = logits.log_softmax(-1)
        tokens = torch.multinomial(log_probs.exp(), 1, generator=generator).squeeze(1)
        chosen = log_probs.gather(1, tokens[:, None]).squeeze(1)
        for row in np.flatnonzero(active).tolist():
            token = int(tokens[row])
            _, r, terminated, truncated, info = envs[row].step(token)
            completions[row].append(token)
            logprobs[row].append(float(chosen[row]))
            rewards[row].append(float(r))
            legal[row] = _legal(envs[row], info)
            active[row] = not (terminated or truncated)
        if not active.any():
            break
        step_active = torch.from_numpy(active).long()
        input_ids = torch.where(step_active.bool(), tokens, pad_id)[:, None]
        attention = torch.cat([attention, step_active[:, None]], dim=1)
        positions = positions[:, -1:] + 1
    model.train(was_training)
    return completions, logprobs, rewards


def _top_k_top_p(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Keep the ``top_k`` best tokens (0: all) and the smallest set of probability mass
    ``top_p`` (1.0: all), as transformers' samplers do."""
    if top_k and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        ordered, order = logits.sort(dim=-1, descending=True)
        probs = ordered.softmax(-1)
        drop = probs.cumsum(-1) - probs >= top_p  # the mass before a token already reaches top_p
        logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    return logits


class DenseGRPOTrainer(GRPOTrainer):
    """``GRPOTrainer`` whose advantages are per token, from :class:`EnvRollout`'s
    ``token_rewards`` (TRL's loss takes (B, T) advantages from subclasses).

    Token t of completion i gets its reward-to-go G[i, t] = sum over k >= t of r[i, k],
    minus the mean of G[j, t] over its group (the completions of the same prompt; a
    completion that ended by t counts 0), divided by the group's std of returns when the
    config's ``scale_rewards`` is ``"group"`` (``"batch"``: the batch's std). At t = 0 this
    is GRPO's own advantage; later tokens are credited with what they add, not with the
    reward the text had already earned. The ``reward_funcs`` are computed and logged
    (pass :func:`episode_return`) but do not enter the advantages.
    """

    def _generate_and_score_completions(self, inputs: list[dict[str, Any]]) -> dict[str, Any]:
        output = super()._generate_and_score_completions(inputs)
        if "token_rewards" not in inputs[0]:
            raise ValueError("DenseGRPOTrainer needs per-token rewards: pass rollout_func=textgym.trl.EnvRollout(...)")
        device = output["completion_ids"].device
        local = torch.zeros(output["completion_ids"].shape, dtype=torch.float32, device=device)
        for row, example in enumerate(inputs):
            local[row, : len(example["token_rewards"])] = torch.tensor(example["token_rewards"], dtype=torch.float32)
        rewards = self.accelerator.gather(self.accelerator.pad_across_processes(local, dim=1))
        mode = "train" if self.model.training else "eval"
        groups = self.num_generations if mode == "train" else self.num_generations_eval
        advantages = group_token_advantages(rewards, groups, self.scale_rewards)
        start = self.accelerator.process_index * len(inputs)
        output["advantages"] = advantages[start : start + len(inputs), : local.shape[1]]
        return output


def group_token_advantages(token_rewards: torch.Tensor, group_size: int, scale: str = "group") -> torch.Tensor:
    """Per-token advantages (see :class:`DenseGRPOTrainer`) of ``token_rewards`` (N, T),
    zero-padded, whose rows come in groups of ``group_size`` completions of one prompt.
    ``scale``: ``"group"``, ``"batch"`` or ``"none"`` (TRL's ``scale_rewards``)."""
    if scale not in ("group", "batch", "none"):
        raise ValueError(f"unknown scale {scale!r}; valid: ['group', 'batch', 'none']")
    n, t = token_rewards.shape
    if n % group_size:
        raise ValueError(f"{n} completions do not make groups of {group_size}")
    to_go = token_rewards.flip(1).cumsum(1).flip(1).view(-1, group_size, t)
    advantages = to_go - to_go.mean(dim=1, keepdim=True)
    if scale == "group":
        advantages = advantages / (to_go[:, :, :1].std(dim=1, keepdim=True) + 1e-4)
    elif scale == "batch":
        advantages = advantages / (to_go[:, :, 0].std() + 1e-4)
    return advantages.view(n, t)
