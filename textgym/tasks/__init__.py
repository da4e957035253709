"""Tasks: examples and splits, from built-in generators, files, lists or HF datasets."""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from textgym.tasks.generators import BUILTIN_TASKS
from textgym.tasks.loaders import read_jsonl, task_from_source
from textgym.tasks.task import SPLITS, Task, TextExample

__all__ = ["BUILTIN_TASKS", "SPLITS", "Task", "TextExample", "load_task", "read_jsonl"]


def load_task(task: Any, task_kwargs: Mapping[str, Any] | None = None) -> Task:
    """Resolve the ``task`` argument of an env into a :class:`Task`.

    ``task`` is a built-in name (see ``BUILTIN_TASKS``), a path to a ``.jsonl`` file, a
    ``{split: path or rows}`` dict, a list of row dicts, a Hugging Face ``Dataset`` or
    ``DatasetDict``, or a ``Task``. ``task_kwargs`` only apply to built-in tasks.
    """
    task_kwargs = dict(task_kwargs or {})
    is_builtin = isinstance(task, str) and task in BUILTIN_TASKS
    if task_kwargs and not is_builtin:
        raise ValueError(f"task_kwargs {sorted(task_kwargs)} only apply to built-in tasks {sorted(BUILTIN_TASKS)}")
    if isinstance(task, Task):
        return task
    if is_builtin:
        return _make_builtin(task, task_kwargs)
    if isinstance(task, (str, os.PathLike)) and not Path(task).suffix:
        raise ValueError(f"unknown task {str(task)!r}; built-in tasks: {sorted(BUILTIN_TASKS)}, or give a .jsonl path")
    return task_from_source(task)


def _make_builtin(name: str, task_kwargs: dict[str, Any]) -> Task:
    generator = BUILTIN_TASKS[name]
    valid = list(inspect.signature(generator).parameters)
    unknown = sorted(set(task_kwargs) - set(valid))
    if unknown:
        raise ValueError(f"unknown task_kwargs {unknown} for task {name!r}; valid: {valid}")
    return generator(**task_kwargs)
