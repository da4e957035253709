"""Tasks: examples and splits, from built-in generators, files, lists or HF datasets."""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from textgym.tasks.commongen import SPLIT_OPTIONS, concept_set, split_concept_sets
from textgym.tasks.conll import load_tagged, read_conll, to_iob2
from textgym.tasks.generators import BUILTIN_TASKS, TAGGED_TASKS
from textgym.tasks.loaders import read_jsonl, task_from_source
from textgym.tasks.task import SPLITS, TaggedSentence, Task, TextExample

__all__ = [
    "BUILTIN_TASKS", "SPLITS", "TaggedSentence", "Task", "TextExample", "concept_set", "load_task", "read_conll",
    "read_jsonl", "split_concept_sets", "to_iob2",
]

READER_OPTIONS = tuple(inspect.signature(load_tagged).parameters)[1:]


def load_task(
    task: Any, task_kwargs: Mapping[str, Any] | None = None, example_type: type = TextExample
) -> Task:
    """Resolve the ``task`` argument of an env into a :class:`Task`.

    ``task`` is a built-in name (see ``BUILTIN_TASKS``), a path to a ``.jsonl`` file, a
    ``{split: path or rows}`` dict, a list of row dicts, a Hugging Face ``Dataset`` or
    ``DatasetDict``, or a ``Task``. ``task_kwargs``, a dict of keyword arguments, are the
    sizes of a built-in task; for one text file, list or dataset they split it into
    train and validation with no concept set on both sides: ``{"validation": 0.05,
    "seed": 0}`` (see :func:`~textgym.tasks.commongen.split_concept_sets`).

    ``example_type`` is what the env needs: ``TextExample`` (the default) or
    ``TaggedSentence`` (NER). Tagged tasks also read CoNLL column files, and their
    ``task_kwargs`` for a file or dataset are reader options (``token_column``,
    ``tag_column``, ``scheme``, ``label_names``; see ``textgym.tasks.conll``).
    """
    tagged = example_type is TaggedSentence
    builtins = sorted(name for name in BUILTIN_TASKS if (name in TAGGED_TASKS) == tagged)
    if task_kwargs is None:
        task_kwargs = {}
    if not isinstance(task_kwargs, Mapping) or not all(isinstance(key, str) for key in task_kwargs):
        raise ValueError(f"task_kwargs must be a dict of keyword arguments by name, got {task_kwargs!r}")
    task_kwargs = dict(task_kwargs)
    is_builtin = isinstance(task, str) and task in BUILTIN_TASKS
    if is_builtin and task not in builtins:
        raise ValueError(f"task {task!r} is not a {example_type.__name__} task; built-in ones: {builtins}")
    held_out_split = bool(task_kwargs) and not is_builtin and not tagged
    if held_out_split:
        unknown = sorted(set(task_kwargs) - set(SPLIT_OPTIONS))
        if unknown:
            raise ValueError(f"task_kwargs {unknown} only apply to built-in tasks {builtins}; a text file or "
                             f"list of rows takes {list(SPLIT_OPTIONS)} (a held-out split of its concept sets)")
        if "validation" not in task_kwargs:
            raise ValueError(f"task_kwargs {sorted(task_kwargs)} need 'validation', the share of concept sets to hold out")
    elif task_kwargs and not is_builtin:
        unknown = sorted(set(task_kwargs) - set(READER_OPTIONS))
        if unknown:
            raise ValueError(
                f"unknown task_kwargs {unknown} for a tagged file or dataset; valid: {list(READER_OPTIONS)}"
            )
    if isinstance(task, Task):
        loaded = task
    elif is_builtin:
        loaded = _make_builtin(task, task_kwargs)
    elif isinstance(task, (str, os.PathLike)) and not Path(task).suffix:
        files = ".jsonl or CoNLL" if tagged else ".jsonl"
        raise ValueError(f"unknown task {str(task)!r}; built-in tasks: {builtins}, or give a {files} path")
    elif tagged:
        loaded = task_from_source(task, lambda source: load_tagged(source, **task_kwargs))
    else:
        loaded = task_from_source(task)
    first = next(loaded.examples())
    if not isinstance(first, example_type):
        raise ValueError(f"task {loaded.name!r} holds {type(first).__name__}s; this env needs {example_type.__name__}s")
    return split_concept_sets(loaded, **task_kwargs) if held_out_split else loaded


def _make_builtin(name: str, task_kwargs: dict[str, Any]) -> Task:
    generator = BUILTIN_TASKS[name]
    valid = list(inspect.signature(generator).parameters)
    unknown = sorted(set(task_kwargs) - set(valid))
    if unknown:
        raise ValueError(f"unknown task_kwargs {unknown} for task {name!r}; valid: {valid}")
    return generator(**task_kwargs)
