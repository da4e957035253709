"""CommonGen (Lin et al., 2020): write a sentence that uses a set of concepts.

CommonGen files are JSONL rows ``{"concepts": [...], "prompt": "w1 w2 ...", "references":
[...]}``; :func:`textgym.tasks.load_task` reads them, and each example keeps its concepts
(:attr:`~textgym.tasks.TextExample.concepts`). One file is one pool of examples, used whole
whatever the split. To hold out validation concept sets from a train file, give the split
as task options; CommonGen's own dev and test files (the same format) load as splits of a
``{split: path}`` dict::

    load_task("commongen/train.jsonl", {"validation": 0.05, "seed": 0})
    gym.make("TokenGen-v0", task="commongen/train.jsonl", task_kwargs={"validation": 0.05}, split="validation")
    load_task({"train": "commongen/train.jsonl", "validation": "commongen/dev.jsonl"})
"""

from __future__ import annotations

import numbers
from collections.abc import Hashable

import numpy as np

from textgym.tasks.task import Task, TextExample

SPLIT_OPTIONS = ("validation", "seed")


def concept_set(example: TextExample) -> tuple[str, ...]:
    """The example's concepts, sorted: rows that list the same concepts in another order
    are the same concept set."""
    return tuple(sorted(example.concepts))


def split_concept_sets(task: Task, validation: float | int, seed: int = 0) -> Task:
    """``task``'s one pool of examples split into "train" and "validation", with no concept
    set on both sides.

    The rule: examples are grouped by :func:`concept_set` (an example without concepts is
    grouped by its prompt), so that every row of a set, however many the file has, goes to
    the same side. The groups, in order of first appearance, are shuffled by
    ``np.random.default_rng(seed)``, and the first ``n`` go to validation: ``n =
    round(validation * groups)`` (at least 1) for a fraction ``0 < validation < 1``, or
    ``validation`` itself for an int >= 1. At least one group stays in train. Both sides
    keep the examples' order, and every example is on exactly one side. The same task
    and seed give the same split.
    """
    name = task.name
    pools = {id(examples) for examples in task.splits.values()}
    if len(pools) != 1:
        raise ValueError(f"task {name!r} already has its own splits {list(task.splits)}; "
                         "task_kwargs validation= splits one file or list of rows")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"task {name!r}: seed must be an int >= 0, got {seed!r}")
    examples = next(iter(task.splits.values()))
    groups: dict[Hashable, list[int]] = {}
    for index, example in enumerate(examples):
        groups.setdefault(concept_set(example) or example.prompt, []).append(index)
    n_held = _held_out_count(name, validation, len(groups))
    order = np.random.default_rng(int(seed)).permutation(len(groups))
    members = list(groups.values())
    held = {index for group in order[:n_held].tolist() for index in members[group]}
    splits = {
        "train": [example for index, example in enumerate(examples) if index not in held],
        "validation": [examples[index] for index in sorted(held)],
    }
    return Task(name, splits, default_reward=task.default_reward, description=task.description)


def _held_out_count(name: str, validation: float | int, n_groups: int) -> int:
    """How many of ``n_groups`` concept sets ``validation`` holds out."""
    if isinstance(validation, bool) or not isinstance(validation, numbers.Real):
        raise ValueError(f"task {name!r}: validation must be a fraction in (0, 1) or a number of concept sets, "
                         f"got {validation!r}")
    if isinstance(validation, numbers.Integral):
        n_held = int(validation)
    elif 0 < validation < 1:
        n_held = max(1, round(validation * n_groups))
    else:
        raise ValueError(f"task {name!r}: validation must be a fraction in (0, 1) or an int >= 1, got {validation!r}")
    if n_groups < 2:
        raise ValueError(f"task {name!r} has 1 concept set; a validation split needs at least 2")
    if not 1 <= n_held < n_groups:
        raise ValueError(f"task {name!r}: validation={validation!r} holds out {n_held} of {n_groups} concept sets; "
                         f"hold out 1 to {n_groups - 1}, so that both sides have one")
    return n_held
