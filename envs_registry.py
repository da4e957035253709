"""The single table of textgym env ids.

Each row maps an id to its entry point, default kwargs (JSON-serialisable, so
``env.spec.to_json()`` works), step limit and, where one exists, the native batched
``vector_entry_point`` that ``gym.make_vec`` uses by default. ``register_envs()`` is idempotent and runs
when ``textgym`` is imported; ``gym.make("textgym:TokenGen-v0")`` imports textgym first.
"""

from __future__ import annotations

import gymnasium as gym

ENVS: dict[str, dict] = {
    "TokenGen-v0": {
        "entry_point": "textgym.envs.token_gen:TokenGenEnv",
        "vector_entry_point": "textgym.envs.token_gen_vector:TokenGenVectorEnv",
        "kwargs": {"task": "copy"},
        "description": "token-by-token text generation scored by BLEU, chrF, ROUGE, ...",
    },
    "TokenGen-Copy-v0": {
        "entry_point": "textgym.envs.token_gen:TokenGenEnv",
        "vector_entry_point": "textgym.envs.token_gen_vector:TokenGenVectorEnv",
        "kwargs": {"task": "copy"},
        "description": "TokenGen on the built-in copy task",
    },
    "TokenGen-Reverse-v0": {
        "entry_point": "textgym.envs.token_gen:TokenGenEnv",
        "vector_entry_point": "textgym.envs.token_gen_vector:TokenGenVectorEnv",
        "kwargs": {"task": "reverse"},
        "description": "TokenGen on the built-in reverse task",
    },
    "TokenGen-Sort-v0": {
        "entry_point": "textgym.envs.token_gen:TokenGenEnv",
        "vector_entry_point": "textgym.envs.token_gen_vector:TokenGenVectorEnv",
        "kwargs": {"task": "sort"},
        "description": "TokenGen on the built-in sort task",
    },
    "TokenGen-Keywords-v0": {
        "entry_point": "textgym.envs.token_gen:TokenGenEnv",
        "vector_entry_point": "textgym.envs.token_gen_vector:TokenGenVectorEnv",
        "kwargs": {"task": "keywords", "reward": "bleu", "reward_mode": "dense"},
        "description": "TokenGen on the built-in CommonGen-like keywords task, dense BLEU",
    },
    "NERTag-v0": {
        "entry_point": "textgym.envs.ner_tag:NERTagEnv",
        "vector_entry_point": "textgym.envs.ner_tag_vector:NERTagVectorEnv",
        "kwargs": {"task": "entities"},
        "description": "named-entity tagging, one IOB2 tag per token, rewarded by span F1",
    },
    "NERTag-Entities-v0": {
        "entry_point": "textgym.envs.ner_tag:NERTagEnv",
        "vector_entry_point": "textgym.envs.ner_tag_vector:NERTagVectorEnv",
        "kwargs": {"task": "entities", "window": 1, "min_freq": 2, "reward_mode": "token"},
        "description": "NERTag on the built-in entities task: a 3-word window and per-token reward, for tabular agents",
    },
    "TokenEdit-v0": {
        "entry_point": "textgym.envs.token_edit:TokenEditEnv",
        "vector_entry_point": "textgym.envs.token_edit_vector:TokenEditVectorEnv",
        "kwargs": {"task": "compress"},
        "description": "keep/delete/replace/insert token edits toward a target, scored by ROUGE",
    },
    "TokenEdit-Compress-v0": {
        "entry_point": "textgym.envs.token_edit:TokenEditEnv",
        "vector_entry_point": "textgym.envs.token_edit_vector:TokenEditVectorEnv",
        "kwargs": {"task": "compress", "mode": "compress"},
        "description": "TokenEdit keep/delete only on the built-in compress task (sentence compression)",
    },
    "TokenEdit-Fix-v0": {
        "entry_point": "textgym.envs.token_edit:TokenEditEnv",
        "vector_entry_point": "textgym.envs.token_edit_vector:TokenEditVectorEnv",
        "kwargs": {"task": "fix", "reward_mode": "dense"},
        "description": "TokenEdit on the built-in fix task (repair corrupted words), dense ROUGE-L",
    },
}

_SPEC_FIELDS = ("entry_point", "kwargs", "max_episode_steps", "vector_entry_point")


def register_envs() -> None:
    """Register every id in ``ENVS`` with Gymnasium; ids already registered are left alone."""
    for env_id, row in ENVS.items():
        if env_id not in gym.registry:
            gym.register(env_id, **{field: row[field] for field in _SPEC_FIELDS if field in row})
