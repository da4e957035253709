"""Rewards: weighted means of metrics, paid sparsely or densely over an episode."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any

from textgym.rewards.incremental import IncrementalReward, supports_incremental
from textgym.rewards.metrics import METRICS, REFERENCE_FREE_METRICS, Metric

REWARD_MODES = ("sparse", "dense")


class Reward:
    """A weighted mean of named metrics.

    ``reward(prediction, references, source)`` returns ``(value, metrics)``: the weighted
    mean and each metric's own value. Weights are relative: they are normalised to sum to
    1, so that metrics in [0, 1] give a reward in [0, 1] (``("bleu", 5)`` pays BLEU itself,
    ``[("bleu", 3), ("rouge1", 1)]`` pays 0.75 BLEU + 0.25 ROUGE-1). Weights must be
    finite and >= 0, with at least one > 0; a metric of weight 0 is reported in
    ``metrics`` without being paid.
    """

    def __init__(self, terms: Sequence[tuple[str, Metric, float]]):
        if not terms:
            raise ValueError("a reward needs at least one metric")
        names = [name for name, _, _ in terms]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate metric names in reward: {names}")
        weights = [weight for _, _, weight in terms]
        if any(not math.isfinite(w) or w < 0 for w in weights) or not any(weights):
            shown = ", ".join(f"{name}: {weight:g}" for name, _, weight in terms)
            raise ValueError(f"reward weights must be finite and >= 0, with one > 0; got {{{shown}}}")
        total = math.fsum(weights)
        self.terms = tuple((name, metric, weight / total) for name, metric, weight in terms)

    def check(self, prediction: str, references: Sequence[str], source: str, argument: str = "reward") -> None:
        """Call each user metric once (textgym's own are trusted), so that one that raises,
        takes other arguments or returns no finite number fails now, naming ``argument``,
        instead of at the first episode end."""
        for name, metric, _ in self.terms:
            if _is_builtin(metric):
                continue
            call = f"{argument}={name!r}: {name}(prediction, references, source) on the first example"
            try:
                value = metric(prediction, references, source)
            except Exception as err:  # noqa: BLE001 (any failure of user code is reported)
                kind = TypeError if isinstance(err, TypeError) else ValueError
                raise kind(f"{call} raised {type(err).__name__}: {err}") from err
            if isinstance(value, bool) or not isinstance(value, Real):
                raise TypeError(f"{call} returned {value!r}; a metric returns a float")
            if not math.isfinite(value):
                raise ValueError(f"{call} returned {value}; a metric returns a finite float")

    def check_references(self, examples: Sequence[Any], task: str, argument: str = "reward") -> None:
        """A ValueError naming the metrics that need references when an example of ``task``
        has none (a reference-free task), with the rewards that would work."""
        needing = [name for name, metric, _ in self.terms if needs_references(metric)]
        if not needing:
            return
        missing = next((i for i, example in enumerate(examples) if not example.references), None)
        if missing is not None:
            raise ValueError(
                f"{argument} metrics {needing} need references, but example {missing} of task {task!r} has none "
                f"(source {examples[missing].prompt!r}); reference-free rewards: {list(REFERENCE_FREE_METRICS)}, "
                "'length' with a target, a callable, or on TokenEdit compression={...} and reward='scrl'"
            )

    @property
    def names(self) -> list[str]:
        return [name for name, _, _ in self.terms]

    def __call__(self, prediction: str, references: Sequence[str], source: str = "") -> tuple[float, dict[str, float]]:
        return self.batch([prediction], [references], [source])[0]

    def batch(self, predictions: Sequence[str], references: Sequence[Sequence[str]],
              sources: Sequence[str]) -> list[tuple[float, dict[str, float]]]:
        """``[self(p, r, s) for p, r, s in zip(...)]``, but a metric with a ``batch(predictions,
        references, sources)`` method (an LM or an encoder) scores all of them in one call."""
        columns = self.columns(predictions, references, sources)
        results = []
        for row in range(len(predictions)):
            metrics = {name: values[row] for name, values in columns.items()}
            results.append((sum(weight * metrics[name] for name, _, weight in self.terms), metrics))
        return results

    def columns(self, predictions: Sequence[str], references: Sequence[Sequence[str]], sources: Sequence[str],
                skip: Sequence[str] = ()) -> dict[str, list[float]]:
        """Each term's values, ``{name: [value of each prediction]}``, in term order, but for
        the terms named in ``skip`` (which the caller scores another way). A metric with a
        ``batch`` method scores all predictions in one call."""
        columns = {}
        for name, metric, _ in self.terms:
            if name in skip:
                continue
            if hasattr(metric, "batch"):
                values = metric.batch(predictions, references, sources)
            else:
                values = [metric(p, r, s) for p, r, s in zip(predictions, references, sources)]
            columns[name] = values = [float(v) for v in values]
            bad = next((i for i, v in enumerate(values) if not math.isfinite(v)), None)
            if bad is not None:
                raise ValueError(f"metric {name!r} returned {values[bad]} for prediction {predictions[bad]!r}")
        return columns

    def __repr__(self) -> str:
        return "Reward(" + " + ".join(f"{w:g}*{name}" for name, _, w in self.terms) + ")"


def needs_references(metric: Metric) -> bool:
    """Whether ``metric`` scores against references: textgym's own metrics say so
    (``needs_references``, else True); a user callable is trusted to handle none."""
    return bool(getattr(metric, "needs_references", _is_builtin(metric)))


def make_reward(spec: Any) -> Reward:
    """Build a :class:`Reward` from an env's ``reward`` argument.

    ``spec`` is a metric name (``"bleu"``), a callable ``(prediction, references, source)
    -> float``, a ``{name: weight}`` dict, or a list whose items are any of: a name, a
    callable, a ``(name or callable, weight)`` pair, or a dict ``{"metric": name,
    "weight": w, **metric_kwargs}`` (for example ``{"metric": "length", "target": 12}``).
    Weights default to 1 and are relative: the reward is the weighted mean, so it stays in
    [0, 1] (see :class:`Reward`). Negative weights and all-zero weights are errors.
    """
    if isinstance(spec, Reward):
        return spec
    if isinstance(spec, Mapping) and "metric" not in spec:
        items = list(spec.items())
    elif isinstance(spec, (list, tuple)) and not _is_weighted_pair(spec):
        items = list(spec)
    else:
        items = [spec]
    return Reward([_term(item) for item in items])


def _is_weighted_pair(spec: Sequence) -> bool:
    return len(spec) == 2 and isinstance(spec[1], Real) and not isinstance(spec[1], bool)


def _term(item: Any) -> tuple[str, Metric, float]:
    weight: Any = 1.0
    kwargs: dict[str, Any] = {}
    if isinstance(item, Mapping):
        kwargs = dict(item)
        if "metric" not in kwargs:
            raise ValueError(f"a reward dict needs a 'metric' key, got {item!r}")
        item = kwargs.pop("metric")
        weight = kwargs.pop("weight", 1.0)
    elif isinstance(item, (list, tuple)):
        if not _is_weighted_pair(item):
            raise ValueError(f"a weighted reward term is (metric, weight), got {item!r}")
        item, weight = item
    if isinstance(weight, bool) or not isinstance(weight, Real) or not math.isfinite(weight):
        raise ValueError(f"reward weight must be a finite number, got {weight!r}")
    if isinstance(item, str):
        if item not in METRICS:
            raise ValueError(f"unknown reward metric {item!r}; valid metrics: {sorted(METRICS)}, or a callable")
        try:
            metric = METRICS[item](**kwargs)
        except TypeError as err:
            raise ValueError(f"bad arguments {kwargs} for metric {item!r}: {err}") from None
        return item, metric, float(weight)
    if callable(item):
        if kwargs:
            raise ValueError(f"arguments {sorted(kwargs)} only apply to named metrics")
        return getattr(item, "__name__", type(item).__name__), item, float(weight)
    raise TypeError(f"a reward metric is a name or a callable, not {type(item).__name__}: {item!r}")


def _is_builtin(metric: Metric) -> bool:
    """Whether ``metric`` is one of textgym's own (a function or an instance of a class of
    ``textgym.rewards``)."""
    module = metric.__module__ if hasattr(metric, "__code__") else type(metric).__module__
    return module.startswith("textgym.rewards")


def check_reward_mode(mode: str, valid: Sequence[str] = REWARD_MODES) -> str:
    if mode not in valid:
        raise ValueError(f"unknown reward_mode {mode!r}; valid modes: {list(valid)}")
    return mode


class EpisodeReward:
    """Pays a :class:`Reward` over one episode, sparsely or densely.

    Sparse: 0 until the episode ends, then the reward of the final output.
    Dense: r_t = phi(s_{t+1}) - phi(s_t), with phi the reward of the current output and
    phi of the reset state taken as 0, so the episode's rewards sum to the sparse reward.

    ``word_edits=True`` means the env's output is the space-join of whitespace-free words
    and the env reports every edit to ``self.words`` (an :class:`IncrementalReward`, set
    on reset in dense mode when every metric has an incremental scorer). phi is then
    updated from n-gram counts instead of rescoring the whole output; the end of an
    episode is still scored by the metrics themselves.
    """

    def __init__(self, reward: Reward, mode: str, word_edits: bool = False):
        self.reward = reward
        self.mode = check_reward_mode(mode)
        self.tracks_words = word_edits and mode == "dense" and supports_incremental(reward)
        self.words: IncrementalReward | None = None
        self.references: Sequence[str] = ()
        self.source = ""
        self._potential = 0.0
        self.metrics: dict[str, float] = {}

    def reset(self, references: Sequence[str], source: str) -> None:
        self.references, self.source = references, source
        self._potential = 0.0
        self.metrics = {}
        if self.tracks_words:
            self.words = IncrementalReward(self.reward, references)

    def step(self, prediction: str, done: bool) -> float:
        """The reward for reaching ``prediction``; end metrics are kept in ``.metrics``."""
        if self.mode == "sparse" and not done:
            return 0.0
        if self.words is not None and not done:
            value = self.words.value
        else:
            value, metrics = self.reward(prediction, self.references, self.source)
            if done:
                self.metrics = metrics
        if self.mode == "sparse":
            return value
        reward, self._potential = value - self._potential, value
        return reward


class EvaluateMetric:
    """Use a Hugging Face ``evaluate`` module as a metric.

    ``module`` is an ``evaluate.EvaluationModule`` or a path to a local metric script
    (``evaluate.load`` of a hub name needs the network). ``key`` picks the result field
    (default: the only one, or the module's name) and ``scale`` maps it to [0, 1].
    """

    def __init__(self, module: Any, key: str | None = None, scale: float = 1.0):
        if isinstance(module, (str, os.PathLike)):
            try:
                import evaluate
            except ImportError:
                raise ImportError("EvaluateMetric needs the 'evaluate' extra: pip install 'textgym[evaluate]'") from None
            module = evaluate.load(str(module))
        if not hasattr(module, "compute"):
            raise TypeError(f"{type(module).__name__} is not an evaluate module (no .compute)")
        self.module, self.key, self.scale = module, key, scale
        self.__name__ = key or getattr(module, "name", "evaluate")

    def __call__(self, prediction: str, references: Sequence[str], source: str = "") -> float:
        result = self.module.compute(predictions=[prediction], references=[list(references)])
        key = self.key
        if key is None:
            key = next(iter(result)) if len(result) == 1 else getattr(self.module, "name", None)
        if key not in result:
            raise KeyError(f"evaluate result has no {key!r}; pass key= one of {sorted(result)}")
        return float(result[key]) * self.scale
