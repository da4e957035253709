"""A task: examples grouped into train/validation/test splits."""

from __future__ import annotations

import reprlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

SPLITS = ("train", "validation", "test")


@dataclass(frozen=True)
class TextExample:
    """One text-to-text example.

    ``prompt`` is what an episode starts from: the generation prompt (TokenGen) or the
    source document to edit (TokenEdit). ``references`` are the acceptable outputs; none
    (``()``) makes a reference-free example, for rewards that need no reference (LM fluency,
    similarity to the source, a length target). A reference may be the empty string: the
    right output is then nothing ("delete everything" in an edit task, EOS at once in a
    generation task).

    ``concepts`` are the words an output should use, for concept-to-text tasks such as
    CommonGen (``()`` for other tasks): what the ``coverage`` metric and held-out concept
    splits read (see :mod:`textgym.tasks.commongen`).
    """

    prompt: str
    references: tuple[str, ...]
    concepts: tuple[str, ...] = ()

    def __post_init__(self):
        if not isinstance(self.prompt, str):
            raise TypeError(f"prompt must be a str, not {type(self.prompt).__name__}")
        # a str is a sequence of str too: without this check "abc" would be three references
        if not isinstance(self.references, (list, tuple)):
            raise TypeError(f"references must be a list of str, not {type(self.references).__name__}")
        object.__setattr__(self, "references", tuple(self.references))
        if not all(isinstance(r, str) for r in self.references):
            raise ValueError(f"references must be a list of str, got {self.references!r}")
        if not isinstance(self.concepts, (list, tuple)):
            raise TypeError(f"concepts must be a list of str, not {type(self.concepts).__name__}")
        object.__setattr__(self, "concepts", tuple(self.concepts))
        if not _all_nonblank_str(self.concepts):
            raise ValueError(f"concepts must be a list of non-blank str, got {self.concepts!r}")


@dataclass(frozen=True)
class TaggedSentence:
    """One sentence for sequence tagging: ``tokens`` and their IOB2 ``tags``.

    Tags are ``"O"``, ``"B-X"`` or ``"I-X"``, and an ``I-X`` only continues a ``B-X`` or
    ``I-X`` (loaders convert IOB1 and BIOES data before building one).
    """

    tokens: tuple[str, ...]
    tags: tuple[str, ...]

    def __post_init__(self):
        for name, value in (("tokens", self.tokens), ("tags", self.tags)):
            if not isinstance(value, tuple):
                # a str or a dict would be split into characters or keys without this check
                if not isinstance(value, list):
                    raise TypeError(f"{name} must be a list of str, not {type(value).__name__}: {reprlib.repr(value)}")
                object.__setattr__(self, name, tuple(value))  # store tuples, so examples are hashable
        if not self.tokens:
            raise ValueError("tokens must be a non-empty list of str, got []")
        if not _all_nonblank_str(self.tokens):
            i, token = next((i, t) for i, t in enumerate(self.tokens) if not isinstance(t, str) or not t.strip())
            raise ValueError(f"token {i} is {token!r}; a token is a str with at least one non-space character")
        if len(self.tags) != len(self.tokens):
            raise ValueError(f"{len(self.tokens)} tokens but {len(self.tags)} tags: {self.tags!r}")
        previous = "O"
        for i, tag in enumerate(self.tags):
            if not isinstance(tag, str) or not (tag == "O" or (tag[:2] in ("B-", "I-") and len(tag) > 2)):
                raise ValueError(f"tag {i} is {tag!r}; IOB2 tags are 'O', 'B-TYPE' or 'I-TYPE'")
            if tag.startswith("I-") and previous[2:] != tag[2:]:
                raise ValueError(f"tag {i} is {tag!r} after {previous!r}: in IOB2 an I-X continues a B-X or I-X")
            previous = tag

    @property
    def prompt(self) -> str:
        """The plain sentence, what an episode starts from."""
        return " ".join(self.tokens)


@dataclass(frozen=True)
class Task:
    """Examples in named splits.

    A task made from one file or one list has a single pool of examples that every split
    name returns (the file is used whole, whatever ``split`` says).
    """

    name: str
    splits: Mapping[str, Sequence[TextExample | TaggedSentence]]
    default_reward: str | None = None
    description: str = field(default="", compare=False)

    def __post_init__(self):
        if not isinstance(self.splits, Mapping):
            raise TypeError(f"splits of task {self.name!r} must be a {{split: examples}} dict, not "
                            f"{type(self.splits).__name__}")
        if not self.splits:
            raise ValueError(f"task {self.name!r} has no splits; give at least one of {list(SPLITS)}")
        for split, examples in self.splits.items():
            if split not in SPLITS:
                raise ValueError(f"unknown split {split!r} in task {self.name!r}; valid splits: {list(SPLITS)}")
            if not examples:
                raise ValueError(f"split {split!r} of task {self.name!r} has no examples")

    @classmethod
    def single(cls, name: str, examples: Sequence[TextExample | TaggedSentence], **kwargs) -> Task:
        """A task whose every split is the same pool of examples."""
        examples = list(examples)
        return cls(name, {split: examples for split in SPLITS}, **kwargs)

    def split(self, name: str) -> Sequence[TextExample | TaggedSentence]:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; valid splits: {list(SPLITS)}")
        if name not in self.splits:
            raise ValueError(f"task {self.name!r} has no {name!r} split; it has {list(self.splits)}")
        return self.splits[name]

    def examples(self) -> Iterator[TextExample | TaggedSentence]:
        """Every example once, over all splits (a pool shared by several splits counts once)."""
        seen: set[int] = set()
        for examples in self.splits.values():
            if id(examples) not in seen:
                seen.add(id(examples))
                yield from examples

    def texts(self) -> Iterator[str]:
        """All prompts and references: what a word vocabulary is built from."""
        for example in self.examples():
            yield example.prompt
            yield from example.references

    def __repr__(self) -> str:
        sizes = ", ".join(f"{split}={len(examples)}" for split, examples in self.splits.items())
        return f"Task({self.name!r}, {sizes})"


def _all_nonblank_str(tokens: tuple) -> bool:
    """True when every token is a str that is not blank; a C-level loop, as loaders call it per sentence."""
    try:
        return all(map(str.strip, tokens))
    except TypeError:  # a token that is not a str
        return False
