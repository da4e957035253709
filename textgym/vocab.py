"""Vocabularies: the map between text and the token ids that envs observe and act with.

Two kinds share one interface:

- :class:`WordVocabulary`, built from a task's text. Its tokenization is sacreBLEU's
  default ``13a`` tokenization followed by a split on whitespace: punctuation is split
  off words, except apostrophes, hyphens inside words, and ``.``/``,`` between digits.
  Decoding joins tokens with single spaces. Because 13a tokenization is idempotent,
  ``decode(encode(ref))`` scores BLEU 100 against ``ref`` (the one exception is 13a's
  own: two of ``.``/``,`` in a row before a digit, as in "..5", re-tokenize differently).
- :class:`TokenizerVocabulary`, an adapter around a ``transformers`` tokenizer or a local
  tokenizer directory, for LM-backed agents whose action space is the model's vocabulary.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")


@lru_cache(maxsize=1)
def _tokenizer_13a():
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    return Tokenizer13a()


def word_tokenize(text: str) -> list[str]:
    """Split ``text`` into words the way sacreBLEU's default (13a) tokenizer does."""
    return _tokenizer_13a()(text).split()


class Vocabulary(ABC):
    """Token ids <-> text. ``len(vocab)`` is the size of a token action space."""

    pad_id: int
    bos_id: int
    eos_id: int
    unk_id: int

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``, without BOS or EOS."""

    @abstractmethod
    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``; special tokens (pad, bos, eos) are dropped."""

    def decode_rows(self, ids: np.ndarray, lengths: np.ndarray) -> list[str]:
        """``decode`` of the first ``lengths[i]`` ids of each row ``i`` of ``ids`` (B, L): the
        texts of a native vector env's sub-envs."""
        return [self.decode(row[:n]) for row, n in zip(ids.tolist(), lengths.tolist())]

    @abstractmethod
    def id_to_token(self, token_id: int) -> str: ...

    @abstractmethod
    def token_to_id(self, token: str) -> int:
        """Id of one token string; raises ``KeyError`` if it is not in the vocabulary."""

    @abstractmethod
    def save(self, path: str | os.PathLike) -> None: ...

    @property
    def special_ids(self) -> frozenset[int]:
        return frozenset({self.pad_id, self.bos_id, self.eos_id, self.unk_id})

    def incremental_decoder(self) -> IncrementalDecoder:
        """A decoder of ids that come one at a time, whose ``text`` equals ``decode`` of
        all of them at a cost that does not grow with their number (TokenGen's steps)."""
        return IncrementalDecoder(self)

    @staticmethod
    def load(path: str | os.PathLike) -> Vocabulary:
        """Load a vocabulary saved by ``save``: a JSON file, or a tokenizer directory."""
        path = Path(path)
        if path.is_dir():
            return TokenizerVocabulary(path)
        if not path.is_file():
            raise FileNotFoundError(f"no vocabulary at {path}")
        return WordVocabulary.load(path)


class WordVocabulary(Vocabulary):
    """A word-level vocabulary: ids 0-3 are ``<pad> <bos> <eos> <unk>``, then words by
    decreasing frequency (ties broken alphabetically, so building is deterministic)."""

    def __init__(self, tokens: Sequence[str], lowercase: bool = False):
        if tuple(tokens[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"a WordVocabulary starts with the special tokens {SPECIAL_TOKENS}")
        if len(set(tokens)) != len(tokens):
            duplicated = sorted(t for t, n in Counter(tokens).items() if n > 1)
            raise ValueError(f"duplicate tokens in vocabulary: {duplicated[:10]}")
        self.tokens: tuple[str, ...] = tuple(tokens)
        self.lowercase = lowercase
        self._ids = {token: i for i, token in enumerate(self.tokens)}
        self.pad_id, self.bos_id, self.eos_id, self.unk_id = range(len(SPECIAL_TOKENS))
        # what decode writes for each id: nothing for pad, bos and eos (map/filter in C: envs decode every step)
        skipped = (self.pad_id, self.bos_id, self.eos_id)
        self._decoded = tuple("" if i in skipped else token for i, token in enumerate(self.tokens))
        self._decoded_words = np.array(self._decoded, dtype=object)

    @classmethod
    def build(
        cls,
        texts: Iterable[str],
        min_freq: int = 1,
        max_size: int | None = None,
        lowercase: bool = False,
    ) -> WordVocabulary:
        """Build from texts; ``max_size`` counts the special tokens too."""
        if min_freq < 1:
            raise ValueError(f"min_freq must be >= 1, got {min_freq}")
        if max_size is not None and max_size < len(SPECIAL_TOKENS):
            raise ValueError(f"max_size must be >= {len(SPECIAL_TOKENS)}, got {max_size}")
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(word_tokenize(text.lower() if lowercase else text))
        for special in SPECIAL_TOKENS:
            counts.pop(special, None)
        words = sorted((w for w, n in counts.items() if n >= min_freq), key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[: max_size - len(SPECIAL_TOKENS)]
        return cls(SPECIAL_TOKENS + tuple(words), lowercase=lowercase)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self._ids

    def tokenize(self, text: str) -> list[str]:
        return word_tokenize(text.lower() if self.lowercase else text)

    def encode(self, text: str) -> list[int]:
        unk = self.unk_id
        return [self._ids.get(token, unk) for token in self.tokenize(text)]

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(filter(None, map(self._decoded.__getitem__, ids)))

    def decode_rows(self, ids: np.ndarray, lengths: np.ndarray) -> list[str]:
        words = self._decoded_words[ids].tolist()  # one gather for every row
        return [" ".join(filter(None, row[:n])) for row, n in zip(words, lengths.tolist())]

    def id_to_token(self, token_id: int) -> str:
        return self.tokens[token_id]

    def incremental_decoder(self) -> IncrementalDecoder:
        return _WordDecoder(self)

    def token_to_id(self, token: str) -> int:
        try:
            return self._ids[token]
        except KeyError:
            raise KeyError(f"token {token!r} is not in the vocabulary of {len(self)} tokens") from None

    def save(self, path: str | os.PathLike) -> None:
        payload = {"kind": "word", "lowercase": self.lowercase, "tokens": list(self.tokens)}
        _atomic_write_text(Path(path), json.dumps(payload, ensure_ascii=False))

    @classmethod
    def load(cls, path: str | os.PathLike) -> WordVocabulary:
        try:
            payload = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: line {err.lineno}: not a saved vocabulary: {err.msg}") from None
        if not isinstance(payload, dict) or payload.get("kind") != "word":
            raise ValueError(f"{path}: not a saved WordVocabulary (expected a JSON object with kind 'word')")
        return cls(payload["tokens"], lowercase=payload.get("lowercase", False))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WordVocabulary) and (self.tokens, self.lowercase) == (other.tokens, other.lowercase)

    def __hash__(self) -> int:
        return hash((self.tokens, self.lowercase))

    def __repr__(self) -> str:
        return f"WordVocabulary({len(self)} tokens)"


class TokenizerVocabulary(Vocabulary):
    """Adapter around a ``transformers`` tokenizer (an object, or a local directory).

    Missing special tokens fall back to EOS, as is usual for GPT-style tokenizers. The
    directory is loaded with ``local_files_only=True``: nothing is downloaded.
    """

    def __init__(self, tokenizer: Any):
        if isinstance(tokenizer, (str, os.PathLike)):
            path = Path(tokenizer)
            if not path.is_dir():
                raise FileNotFoundError(f"no tokenizer directory at {path}")
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        for method in ("encode", "decode", "convert_ids_to_tokens", "convert_tokens_to_ids"):
            if not hasattr(tokenizer, method):
                raise TypeError(f"{type(tokenizer).__name__} is not a transformers tokenizer (no .{method})")
        self.tokenizer = tokenizer
        eos = tokenizer.eos_token_id
        if eos is None:
            raise ValueError("the tokenizer has no eos_token; a generation env needs one to end episodes")
        self.eos_id = eos
        self.bos_id = _first_id(tokenizer.bos_token_id, eos)
        self.pad_id = _first_id(tokenizer.pad_token_id, eos)
        self.unk_id = _first_id(tokenizer.unk_token_id, eos)
        self._size = len(tokenizer)
        self._backend = _plain_backend(tokenizer)

    def __len__(self) -> int:
        return self._size

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, add_special_tokens=False))

    def decode(self, ids: Iterable[int]) -> str:
        if self._backend is not None and not self.tokenizer.clean_up_tokenization_spaces:
            # what tokenizer.decode returns, without its Python layers (TokenGen decodes each step)
            return self._backend.decode([int(i) for i in ids], skip_special_tokens=True)
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)

    def id_to_token(self, token_id: int) -> str:
        return self.tokenizer.convert_ids_to_tokens(int(token_id))

    def token_to_id(self, token: str) -> int:
        token_id = self.tokenizer.convert_tokens_to_ids(token)
        if token_id is None or (token_id == self.tokenizer.unk_token_id and token != self.tokenizer.unk_token):
            raise KeyError(f"token {token!r} is not in the tokenizer's vocabulary")
        return token_id

    def save(self, path: str | os.PathLike) -> None:
        self.tokenizer.save_pretrained(str(path))

    def __repr__(self) -> str:
        return f"TokenizerVocabulary({type(self.tokenizer).__name__}, {len(self)} tokens)"


class IncrementalDecoder:
    """``decode`` of a growing id list, as Hugging Face's streamers and ``tokenizers``'
    ``DecodeStream`` do it: the text of each new id is what decoding a few ids of context
    plus the new one adds to decoding the context alone, so that tokenizers which mark
    word starts (SentencePiece's ▁, byte-level BPE's Ġ) join up as in a full decode.

    Ids that end in an incomplete UTF-8 character (a trailing U+FFFD) or that change the
    context's own text are kept pending and decoded again with the next id; if they
    pile up past ``_MAX_PENDING`` the text is resynchronised by one full decode. Either
    way ``text`` is ``decode`` of all the ids appended so far.
    """

    _CONTEXT = 4  # ids of context before the pending ones
    _MAX_PENDING = 16

    def __init__(self, vocab: Vocabulary):
        self.vocab = vocab
        self.reset()

    def reset(self) -> None:
        self.ids: list[int] = []
        self.text = ""
        self._committed = ""  # the text of ids[:self._read]
        self._context, self._read = 0, 0  # ids[self._context:self._read] give context
        self._context_text = ""

    def append(self, token: int) -> str:
        """Add ``token``; returns the text of all the ids so far."""
        ids = self.ids
        ids.append(token)
        decoded = self.vocab.decode(ids[self._context :])
        if not decoded.startswith(self._context_text) or len(ids) - self._read > self._MAX_PENDING:
            self._commit(self.vocab.decode(ids), len(ids))  # rare: resynchronise
        elif decoded.endswith("\ufffd") or len(decoded) == len(self._context_text):
            self.text = self._committed + decoded[len(self._context_text) :]  # pending
        else:
            self._commit(self._committed + decoded[len(self._context_text) :], len(ids))
        return self.text

    def _commit(self, text: str, read: int) -> None:
        self.text = self._committed = text
        self._read = read
        self._context = max(0, read - self._CONTEXT)
        self._context_text = self.vocab.decode(self.ids[self._context : read])


class _WordDecoder(IncrementalDecoder):
    """A word vocabulary decodes to the space-join of its words (pad, bos and eos drop
    out), so each id appends its word. The text is one ``str`` that grows by a word a
    step: Python copies it (a memcpy, microseconds at 16k words), but decodes nothing."""

    def __init__(self, vocab: WordVocabulary):
        self._skip = (vocab.pad_id, vocab.bos_id, vocab.eos_id)
        super().__init__(vocab)

    def reset(self) -> None:
        self.ids = []
        self.text = ""

    def append(self, token: int) -> str:
        self.ids.append(token)
        if token not in self._skip:
            word = self.vocab.id_to_token(token)
            self.text = f"{self.text} {word}" if self.text else word
        return self.text


def _plain_backend(tokenizer: Any) -> Any:
    """The ``tokenizers`` backend of a fast tokenizer whose ``decode`` is transformers' own,
    which is the backend's decode followed by ``clean_up_tokenization`` when
    ``clean_up_tokenization_spaces`` is set; None for other tokenizers."""
    try:
        from transformers import PreTrainedTokenizerFast
        from transformers.tokenization_utils_base import PreTrainedTokenizerBase
    except ImportError:
        return None
    cls = type(tokenizer)
    if (isinstance(tokenizer, PreTrainedTokenizerFast) and cls.decode is PreTrainedTokenizerBase.decode
            and cls._decode is PreTrainedTokenizerFast._decode):
        return tokenizer.backend_tokenizer
    return None


def _first_id(*ids: int | None) -> int:
    return next(i for i in ids if i is not None)


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def resolve_vocabulary(vocab: Any, texts: Iterable[str]) -> Vocabulary:
    """The ``vocab`` argument of every env: None (build from ``texts``), a Vocabulary,
    a transformers tokenizer, or a path to a saved vocabulary or tokenizer directory."""
    if vocab is None:
        return WordVocabulary.build(texts)
    if isinstance(vocab, Vocabulary):
        return vocab
    if isinstance(vocab, (str, os.PathLike)):
        return Vocabulary.load(vocab)
    if hasattr(vocab, "convert_ids_to_tokens"):
        return TokenizerVocabulary(vocab)
    raise TypeError(
        f"vocab must be None, a textgym Vocabulary, a transformers tokenizer or a path, "
        f"not {type(vocab).__name__}"
    )
