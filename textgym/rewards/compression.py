"""SCRL-style compression reward: a pure metric of the output's size against a target."""

from __future__ import annotations

import math
from collections.abc import Sequence
from numbers import Real

from textgym.vocab import word_tokenize

COMPRESSION_SHAPES = ("gaussian", "linear")


class CompressionScore:
    """SCRL-style length reward in [0, 1]: how close the output's size is to a target.

    x is the output's word count (13a tokens) over the source's (``ratio``), or the output's
    word count (``length``). ``shape="gaussian"`` scores exp(-(x - target)^2 / (2 width^2)),
    ``"linear"`` scores max(0, 1 - |x - target| / width). ``width`` defaults to a quarter of
    the target. It needs no references.
    """

    needs_references = False

    def __init__(self, ratio: float | None = None, length: int | None = None, shape: str = "gaussian",
                 width: float | None = None):
        if (ratio is None) == (length is None):
            raise ValueError(f"compression takes exactly one of 'ratio' or 'length', got {ratio=}, {length=}")
        kind, target = ("ratio", ratio) if ratio is not None else ("length", length)
        if isinstance(target, bool) or not isinstance(target, Real) or not 0 < target < math.inf:
            raise ValueError(f"compression {kind} must be a positive number, got {target!r}")
        if shape not in COMPRESSION_SHAPES:
            raise ValueError(f"unknown compression shape {shape!r}; valid shapes: {list(COMPRESSION_SHAPES)}")
        width = target / 4 if width is None else width
        if isinstance(width, bool) or not isinstance(width, Real) or not 0 < width < math.inf:
            raise ValueError(f"compression width must be a positive number, got {width!r}")
        self.by_ratio, self.target, self.shape, self.width = ratio is not None, float(target), shape, float(width)
        self.__name__ = "compression"

    def __call__(self, prediction: str, references: Sequence[str], source: str = "") -> float:
        x = float(len(word_tokenize(prediction)))
        if self.by_ratio:
            x /= max(1, len(word_tokenize(source)))
        distance = abs(x - self.target) / self.width
        if self.shape == "gaussian":
            return math.exp(-0.5 * distance**2)
        return max(0.0, 1.0 - distance)

    def __repr__(self) -> str:
        kind = "ratio" if self.by_ratio else "length"
        return f"CompressionScore({kind}={self.target:g}, shape={self.shape!r}, width={self.width:g})"
