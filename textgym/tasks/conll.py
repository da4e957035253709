"""Tagged sentences for NER: CoNLL column files, JSONL rows and Hugging Face datasets.

Every loader returns :class:`TaggedSentence` examples with IOB2 tags. ``tokens`` is a
list of str, none of them blank (a str there is an error, not a list of characters);
tags are str, or int ids ``0 .. len(label_names) - 1`` (no bools, no negative ids). Files
are UTF-8 (a leading byte order mark is skipped), and malformed input raises
``ValueError`` naming the file and line, or ``row i``. Other schemes are converted on
reading (``scheme=``):

- ``"iob1"``: ``B-X`` only separates two adjacent entities of one type; an ``I-X`` that
  starts an entity becomes ``B-X``. Valid IOB2 is unchanged by this conversion.
- ``"bioes"`` (also called IOBES): ``S-X`` becomes ``B-X`` and ``E-X`` becomes ``I-X``.
- ``"iob2"``: kept as is; an ``I-X`` that continues nothing is an error.
- ``"auto"`` (default): ``"bioes"`` if any tag starts with ``S-`` or ``E-``, else ``"iob1"``.
"""

from __future__ import annotations

import os
import reprlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from textgym.tasks.loaders import SOURCES, is_hf_dataset, read_jsonl, read_text_lines
from textgym.tasks.task import TaggedSentence

SCHEMES = ("auto", "iob1", "iob2", "bioes")
CONLL_SUFFIXES = (".conll", ".txt", ".tsv", ".bio", ".iob")
_PREFIXES = {"iob1": "BI", "iob2": "BI", "bioes": "BIES"}


class _TagError(ValueError):
    """A bad tag at ``index``; the caller adds where it was read from."""

    def __init__(self, index: int, message: str):
        super().__init__(message)
        self.index = index


def to_iob2(tags: Sequence[str], scheme: str = "auto") -> list[str]:
    """``tags`` of one sentence converted from ``scheme`` (see the module doc) to IOB2."""
    if isinstance(tags, str) or not all(isinstance(tag, str) for tag in tags):
        raise ValueError(f"tags must be a list of str, got {reprlib.repr(tags)}")
    try:
        return _to_iob2(tags, scheme)
    except _TagError as err:
        raise ValueError(f"tag {err.index}: {err}") from None


def _to_iob2(tags: Sequence[str], scheme: str) -> list[str]:
    _check_scheme(scheme)
    if scheme == "auto":
        scheme = "bioes" if any(tag[:2] in ("S-", "E-") for tag in tags) else "iob1"
    converted: list[str] = []
    previous_type = None  # the type of the entity the previous tag belongs to
    for i, tag in enumerate(tags):
        if tag == "O":
            converted.append(tag)
            previous_type = None
            continue
        prefix, _, kind = tag.partition("-")
        if len(prefix) != 1 or not kind or prefix not in _PREFIXES[scheme]:
            valid = ", ".join(f"{p}-TYPE" for p in _PREFIXES[scheme])
            raise _TagError(i, f"{tag!r} is not a valid {scheme.upper()} tag (O, {valid})")
        if prefix in "IE" and previous_type != kind:
            if scheme == "iob2":
                raise _TagError(i, f"{tag!r} continues no entity; use scheme='iob1' or 'auto' to convert it")
            prefix = "B"  # IOB1 starts entities with I-; BIOES data with a stray I-/E- is repaired alike
        converted.append(f"{'B' if prefix in 'BS' else 'I'}-{kind}")
        previous_type = None if prefix in "ES" else kind
    return converted


def read_conll(
    path: str | os.PathLike, token_column: int = 0, tag_column: int = -1, scheme: str = "auto"
) -> list[TaggedSentence]:
    """Sentences of a CoNLL column file: one token per line, columns separated by tabs (or
    by spaces when a line has no tab), blank lines between sentences. ``-DOCSTART-`` lines
    are skipped. Malformed lines raise ``ValueError`` naming the file and line."""
    token_column, tag_column = _column("token_column", token_column), _column("tag_column", tag_column)
    if token_column == tag_column:
        raise ValueError(f"token_column and tag_column are both {token_column}; the tokens and tags need two columns")
    _check_scheme(scheme)
    lines = read_text_lines(path)
    sentences: list[TaggedSentence] = []
    tokens: list[str] = []
    tags: list[str] = []
    linenos: list[int] = []

    def flush() -> None:
        if tokens:
            try:
                sentences.append(TaggedSentence(tuple(tokens), tuple(_to_iob2(tags, scheme))))
            except _TagError as err:
                raise ValueError(f"{path}:{linenos[err.index]}: {err}") from None
            tokens.clear()
            tags.clear()
            linenos.clear()

    for lineno, line in enumerate(lines, start=1):
        if not line.strip():  # WNUT-17 separates some sentences with a lone tab
            flush()
            continue
        columns = line.split("\t") if "\t" in line else line.split()
        if len(columns) < 2:
            raise ValueError(f"{path}:{lineno}: expected a token and a tag, got {line!r}")
        try:
            token, tag = columns[token_column].strip(), columns[tag_column].strip()
        except IndexError:
            raise ValueError(
                f"{path}:{lineno}: {len(columns)} column(s) {columns!r}; token_column={token_column} "
                f"and tag_column={tag_column} need more"
            ) from None
        if not token or not tag:
            raise ValueError(f"{path}:{lineno}: expected a token and a tag, got {line!r}")
        if token == "-DOCSTART-":
            continue
        tokens.append(token)
        tags.append(tag)
        linenos.append(lineno)
    flush()
    if not sentences:
        raise ValueError(f"{path}: no sentences in file")
    return sentences


def sentence_from_row(
    row: Any, where: str, label_names: Sequence[str] | None = None, scheme: str = "auto"
) -> TaggedSentence:
    """One sentence from ``{"tokens": [...], "tags": [str, ...]}`` or ``{"tokens": [...],
    "ner_tags": [int, ...]}`` (ids into ``label_names``), or a ``TaggedSentence``."""
    if isinstance(row, TaggedSentence):
        return row
    if not isinstance(row, Mapping):
        raise ValueError(f"{where}: expected an object with 'tokens' and 'tags', got {type(row).__name__}")
    if "tokens" not in row or not ({"tags", "ner_tags"} & row.keys()):
        raise ValueError(f"{where}: expected fields 'tokens' and 'tags' (or 'ner_tags'), found {sorted(map(str, row))}")
    tags = row["tags"] if "tags" in row else row["ner_tags"]
    if not isinstance(tags, (list, tuple)):
        raise ValueError(f"{where}: tags must be a list, got {type(tags).__name__}: {reprlib.repr(tags)}")
    try:
        if not all(isinstance(tag, str) for tag in tags):
            tags = _tag_names(tags, label_names)
        return TaggedSentence(row["tokens"], _to_iob2(tags, scheme))
    except _TagError as err:
        raise ValueError(f"{where}: tag {err.index}: {err}") from None
    except (ValueError, TypeError) as err:
        raise ValueError(f"{where}: {err}") from None


def _tag_names(ids: Sequence[Any], label_names: Sequence[str] | None) -> list[str]:
    """Integer tags looked up in ``label_names``; ids that are negative, bools or not ints are errors."""
    if label_names is None:
        raise ValueError("integer tags need label names (task_kwargs={'label_names': [...]})")
    names = []
    for i, tag in enumerate(ids):
        if isinstance(tag, bool) or not isinstance(tag, (int, np.integer)) or not 0 <= tag < len(label_names):
            raise _TagError(i, f"{tag!r} is not a tag id; ids are ints from 0 to {len(label_names) - 1}, "
                               "the indexes of label_names")
        names.append(label_names[tag])
    return names


def _column(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int column index (negative counts from the end), got {value!r}")
    return int(value)


def _check_scheme(scheme: Any) -> None:
    if not isinstance(scheme, str) or scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; valid: {list(SCHEMES)}")


def load_tagged(
    source: Any,
    token_column: int = 0,
    tag_column: int = -1,
    scheme: str = "auto",
    label_names: Sequence[str] | None = None,
) -> list[TaggedSentence]:
    """One split of tagged sentences from a CoNLL or JSONL path, a list of rows, or a HF
    ``Dataset`` (label names come from its ``ner_tags`` ClassLabel feature if not given)."""
    _check_scheme(scheme)
    if label_names is not None and (
        not isinstance(label_names, (list, tuple))
        or not label_names
        or not all(isinstance(name, str) for name in label_names)
    ):
        raise ValueError(f"label_names must be a non-empty list of str tags, got {reprlib.repr(label_names)}")
    if isinstance(source, (str, os.PathLike)):
        suffix = Path(source).suffix
        if suffix in CONLL_SUFFIXES:
            return read_conll(source, token_column, tag_column, scheme)
        if suffix == ".jsonl":
            return read_jsonl(source, lambda row, where: sentence_from_row(row, where, label_names, scheme))
        raise ValueError(f"unsupported NER file {str(source)!r}: use a .jsonl file or a CoNLL file {CONLL_SUFFIXES}")
    if is_hf_dataset(source) and label_names is None:
        feature = getattr(source, "features", {}).get("ner_tags")
        label_names = getattr(getattr(feature, "feature", None), "names", None)
    if is_hf_dataset(source) or isinstance(source, (list, tuple)):
        sentences = [sentence_from_row(row, f"row {i}", label_names, scheme) for i, row in enumerate(source)]
        if not sentences:
            raise ValueError("the task has no sentences")
        return sentences
    got = f"{type(source).__name__} {reprlib.repr(source)}"
    raise TypeError(f"cannot read tagged sentences from {got}; task is {SOURCES}")
