"""Load tasks from JSONL and plain text files, lists of dicts and Hugging Face datasets.

A row is a mapping with the text the episode starts from (``"prompt"``, or ``"source"``;
``"prompt"`` wins when a row has both) and its references: ``"references"``, a non-empty
list of str, or ``"target"``, one str. A str under ``"references"`` is an error rather
than one reference, since a list that was flattened by mistake looks the same. A
reference may be the empty string (the right output is nothing). A row with neither key
is a reference-free example, as is each non-blank line of a ``.txt`` file; a source is
either reference-free or has references in every row, since a row that lost its
references in a file of rows that have them is a data error.

A row may also list ``"concepts"``, the words its output should use (CommonGen rows
``{"concepts", "prompt", "references"}``): a non-empty list of non-blank str, kept in
:attr:`TextExample.concepts`. A row with concepts and no prompt gets the concepts joined
by spaces as its prompt (Hugging Face's ``common_gen`` rows are ``{"concepts", "target"}``).

Files are UTF-8; a leading byte order mark is skipped. Malformed rows and undecodable
bytes raise ``ValueError`` naming the file and line (or ``row i`` for lists and datasets).
"""

from __future__ import annotations

import codecs
import json
import os
import reprlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from textgym.tasks.task import SPLITS, Task, TextExample, _all_nonblank_str

PROMPT_KEYS = ("prompt", "source")
REFERENCE_KEYS = ("references", "target")
CONCEPTS_KEY = "concepts"
SOURCES = "a built-in task name, a file path, a {split: source} dict, a list of row dicts, a HF dataset or a Task"


def example_from_row(row: Any, where: str) -> TextExample:
    """Parse one row; ``where`` ("file.jsonl:3" or "row 3") prefixes every error."""
    if not isinstance(row, Mapping):
        raise ValueError(f"{where}: expected a JSON object, got {type(row).__name__}")
    concepts = _concepts(row, where)
    if concepts and not any(key in row for key in PROMPT_KEYS):
        prompt = " ".join(concepts)
    else:
        key, prompt = _first_present(row, PROMPT_KEYS, where)
        if not isinstance(prompt, str):
            raise ValueError(f"{where}: {key!r} must be a str, got {type(prompt).__name__}: {reprlib.repr(prompt)}")
    key = next((key for key in REFERENCE_KEYS if key in row), None)
    if key is None:
        return TextExample(prompt, (), concepts)
    references = row[key]
    if key == "target":
        if not isinstance(references, str):
            hint = "; use 'references' for several" if isinstance(references, (list, tuple)) else ""
            got = f"{type(references).__name__}: {reprlib.repr(references)}"
            raise ValueError(f"{where}: 'target' must be one str, got {got}{hint}")
        references = (references,)
    elif isinstance(references, str):
        raise ValueError(
            f"{where}: 'references' must be a list of str, got the str {reprlib.repr(references)}; "
            "use 'target' for a single reference"
        )
    elif (
        not isinstance(references, (list, tuple))
        or not references
        or not all(isinstance(r, str) for r in references)
    ):
        raise ValueError(f"{where}: 'references' must be a non-empty list of str, got {reprlib.repr(references)}")
    return TextExample(prompt, tuple(references), concepts)


def _concepts(row: Mapping, where: str) -> tuple[str, ...]:
    """The row's ``"concepts"``, or ``()`` when it has none."""
    if CONCEPTS_KEY not in row:
        return ()
    concepts = row[CONCEPTS_KEY]
    if not isinstance(concepts, (list, tuple)) or not concepts or not _all_nonblank_str(tuple(concepts)):
        raise ValueError(f"{where}: 'concepts' must be a non-empty list of non-blank str, got {reprlib.repr(concepts)}")
    return tuple(concepts)


def _first_present(row: Mapping, keys: tuple[str, ...], where: str) -> tuple[str, Any]:
    for key in keys:
        if key in row:
            return key, row[key]
    raise ValueError(f"{where}: missing field; expected one of {list(keys)}, found {sorted(map(str, row))}")


def read_sentences(path: str | os.PathLike) -> list[TextExample]:
    """Reference-free examples from a UTF-8 text file: one per non-blank line, stripped."""
    examples = [TextExample(line.strip(), ()) for line in read_text_lines(path) if line.strip()]
    if not examples:
        raise ValueError(f"{path}: no sentences in file")
    return examples


def read_text_lines(path: str | os.PathLike) -> list[str]:
    """The lines of a UTF-8 text file, without line ends; a leading byte order mark is
    skipped, and a byte that is not UTF-8 raises ``ValueError`` naming the line and column."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"task file not found: {path}")
    data = path.read_bytes()
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[start:].decode("utf-8")
    except UnicodeDecodeError as err:
        offset = start + err.start
        line_start = data.rfind(b"\n", 0, offset) + 1
        lineno = data.count(b"\n", 0, offset) + 1
        column = len(data[max(line_start, start):offset].decode("utf-8")) + 1  # in characters, as editors count
        utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))  # Windows' "Unicode" text files
        hint = "; the file is UTF-16, save it as UTF-8" if utf16 else ""
        raise ValueError(
            f"{path}:{lineno}: not valid UTF-8 (byte 0x{data[offset]:02x} at column {column}){hint}"
        ) from None
    # the line ends Python's text files read as newlines: \n, \r\n and \r
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def read_jsonl(path: str | os.PathLike, parse_row: Callable[[Any, str], Any] = example_from_row) -> list:
    """Examples of a JSONL file, one row per line; ``parse_row(row, "file:line")`` builds one."""
    examples, wheres = [], []
    for lineno, line in enumerate(read_text_lines(path), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{lineno}: invalid JSON: {err.msg} (column {err.colno})") from None
        wheres.append(f"{path}:{lineno}")
        examples.append(parse_row(row, wheres[-1]))
    if not examples:
        raise ValueError(f"{path}: no examples in file")
    _check_references_everywhere_or_nowhere(examples, wheres)
    return examples


def examples_from_rows(rows: Iterable[Any]) -> list[TextExample]:
    examples = [example_from_row(row, f"row {i}") for i, row in enumerate(rows)]
    if not examples:
        raise ValueError("the task has no examples")
    _check_references_everywhere_or_nowhere(examples, [f"row {i}" for i in range(len(examples))])
    return examples


def _check_references_everywhere_or_nowhere(examples: list, wheres: list[str]) -> None:
    if not isinstance(examples[0], TextExample):
        return
    with_references = [bool(example.references) for example in examples]
    if any(with_references) and not all(with_references):
        where = wheres[with_references.index(False)]
        first = wheres[with_references.index(True)]
        raise ValueError(f"{where}: missing field; expected one of {list(REFERENCE_KEYS)} as in {first} "
                         "(a reference-free task has neither key in any row)")


def _load_source(source: Any) -> list[TextExample]:
    """One split's worth of examples from a path, a list of rows or a datasets.Dataset."""
    if isinstance(source, (str, os.PathLike)):
        suffix = Path(source).suffix
        if suffix not in (".jsonl", ".txt"):
            raise ValueError(f"unsupported task file {str(source)!r}: text tasks are read from .jsonl files, or "
                             ".txt files of one sentence per line (reference-free)")
        return read_jsonl(source) if suffix == ".jsonl" else read_sentences(source)
    if is_hf_dataset(source) or isinstance(source, (list, tuple)):
        return examples_from_rows(source)
    raise TypeError(f"cannot read examples from {type(source).__name__} {reprlib.repr(source)}; task is {SOURCES}")


def is_hf_dataset(obj: Any) -> bool:
    return type(obj).__module__.startswith("datasets.") and hasattr(obj, "column_names")


def task_from_source(source: Any, load_split: Callable[[Any], list] = _load_source) -> Task:
    """A path, list of rows, HF ``Dataset``/``DatasetDict`` or ``{split: source}`` dict;
    ``load_split(source)`` reads one split (text examples unless told otherwise)."""
    if isinstance(source, (str, os.PathLike)):
        return Task.single(Path(source).name, load_split(source))
    if isinstance(source, Mapping) or (is_hf_dataset(source) and hasattr(source, "keys")):
        splits = {_split_name(split): load_split(source[split]) for split in source.keys()}
        return Task("custom", splits)
    return Task.single("custom", load_split(source))


def _split_name(name: str) -> str:
    """HF datasets often call the validation split "dev" or "valid"."""
    name = {"dev": "validation", "valid": "validation", "val": "validation"}.get(name, name)
    if name not in SPLITS:
        raise ValueError(f"unknown split {name!r}; valid splits: {list(SPLITS)}")
    return name
