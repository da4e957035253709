"""Built-in offline tasks, generated deterministically from a seed.

Their default sizes are small enough for a tabular agent to solve in under 50k steps;
bigger settings are opt-in through keyword arguments (``task_kwargs`` of every env).
Integer arguments take Python or numpy ints (not bools or floats); a bad one raises
``ValueError`` naming the task and the argument.
"""

from __future__ import annotations

import itertools
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from textgym.tasks.task import SPLITS, TaggedSentence, Task, TextExample

SUBJECTS = ("dog", "cat", "boy", "girl", "bird", "horse", "man", "woman", "child", "farmer")
VERBS = (
    ("see", "sees"), ("like", "likes"), ("find", "finds"), ("chase", "chases"), ("carry", "carries"),
    ("watch", "watches"), ("push", "pushes"), ("hold", "holds"), ("want", "wants"), ("throw", "throws"),
)
OBJECTS = ("ball", "tree", "apple", "kite", "hat", "box", "car", "book", "stick", "chair")
PLACES = (("park", "in the park"), ("river", "near the river"), ("garden", "in the garden"),
          ("beach", "on the beach"), ("street", "on the street"))
DETERMINERS = ("the", "a")
# removable pieces of the compress grammar, and the kinds of corruption of the fix task
ADJECTIVES = ("big", "small", "old")
ADVERBS = ("quickly", "slowly", "suddenly")
FILLERS = ("actually", "well", "of course")
CLAUSES = ("that was tired", "that we saw", "that looked happy")
REMOVABLE = ("adjective", "adverb", "filler", "place", "clause")
CORRUPTIONS = ("swap", "duplicate", "wrong", "drop")


def _int_arg(task: str, name: str, value: Any, low: int, high: int | None = None) -> int:
    """``value`` as an int in [low, high]; numpy integers pass, bools and floats do not."""
    if (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low
            or (high is not None and value > high)):
        if high is not None:
            expected = f"an int between {low} and {high}"
        else:
            expected = {0: "a non-negative int", 1: "a positive int"}.get(low, f"an int >= {low}")
        raise ValueError(f"task {task!r}: {name} must be {expected}, got {value!r}")
    return int(value)


def _split_sizes(task: str, n_train: Any, n_validation: Any, n_test: Any) -> dict[str, int]:
    sizes = zip(SPLITS, ("n_train", "n_validation", "n_test"), (n_train, n_validation, n_test), strict=True)
    return {split: _int_arg(task, name, size, 1) for split, name, size in sizes}


def _word_counts(task: str, n_subjects: Any, n_verbs: Any, n_objects: Any) -> tuple[int, int, int]:
    return (_int_arg(task, "n_subjects", n_subjects, 1, len(SUBJECTS)),
            _int_arg(task, "n_verbs", n_verbs, 1, len(VERBS)),
            _int_arg(task, "n_objects", n_objects, 1, len(OBJECTS)))


def _sequence_task(
    name: str,
    transform: Callable[[list[str]], list[str]],
    length: int,
    n_symbols: int,
    n_train: int,
    n_validation: int,
    n_test: int,
    seed: int,
) -> Task:
    length = _int_arg(name, "length", length, 1)
    n_symbols = _int_arg(name, "n_symbols", n_symbols, 1, 26)
    sizes = _split_sizes(name, n_train, n_validation, n_test)
    seed = _int_arg(name, "seed", seed, 0)
    symbols = [chr(ord("a") + i) for i in range(n_symbols)]
    splits = {}
    for index, (split, size) in enumerate(sizes.items()):
        rng = np.random.default_rng([seed, index])
        draws = rng.integers(n_symbols, size=(size, length))
        splits[split] = [
            TextExample(" ".join(words), (" ".join(transform(words)),))
            for words in ([symbols[i] for i in row] for row in draws)
        ]
    return Task(name, splits, default_reward="token_accuracy", description=f"{name} a sequence of letters")


def copy(length: int = 3, n_symbols: int = 5, n_train: int = 1000, n_validation: int = 200,
         n_test: int = 200, seed: int = 0) -> Task:
    """Copy: write the prompt's letters back in the same order ("b d a" -> "b d a")."""
    return _sequence_task("copy", list, length, n_symbols, n_train, n_validation, n_test, seed)


def reverse(length: int = 3, n_symbols: int = 5, n_train: int = 1000, n_validation: int = 200,
            n_test: int = 200, seed: int = 0) -> Task:
    """Reverse: write the prompt's letters in reverse order ("b d a" -> "a d b")."""
    return _sequence_task("reverse", lambda w: w[::-1], length, n_symbols, n_train, n_validation, n_test, seed)


def sort(length: int = 3, n_symbols: int = 5, n_train: int = 1000, n_validation: int = 200,
         n_test: int = 200, seed: int = 0) -> Task:
    """Sort: write the prompt's letters in alphabetical order ("b d a" -> "a b d")."""
    return _sequence_task("sort", sorted, length, n_symbols, n_train, n_validation, n_test, seed)


def keywords(n_subjects: int = 3, n_verbs: int = 2, n_objects: int = 3, places: int = 0,
             held_out: float = 0.2, seed: int = 0) -> Task:
    """Keywords (CommonGen-like): write a sentence that uses the given concept words.

    The concepts are a subject, a verb (as a lemma) and an object, plus a place when
    ``places > 0``, listed alphabetically: "ball dog see". The references are every
    sentence of the grammar ``DET SUBJECT VERB-s DET OBJECT [PLACE] .`` that uses them:
    "the dog sees a ball .", "a dog sees the ball .", ... Concept sets are split between
    train, validation and test (``held_out`` of them each for validation and test), so
    held-out splits test generalisation to new combinations.
    """
    n_subjects, n_verbs, n_objects = _word_counts("keywords", n_subjects, n_verbs, n_objects)
    places = _int_arg("keywords", "places", places, 0, len(PLACES))
    seed = _int_arg("keywords", "seed", seed, 0)
    if isinstance(held_out, bool) or not isinstance(held_out, numbers.Real) or not 0 <= held_out < 0.5:
        raise ValueError(f"task 'keywords': held_out must be a fraction in [0, 0.5), got {held_out!r}")

    place_options = PLACES[:places] or ((None, ""),)
    combos = list(itertools.product(SUBJECTS[:n_subjects], VERBS[:n_verbs], OBJECTS[:n_objects], place_options))
    examples = []
    for subject, (lemma, verb), obj, (place, phrase) in combos:
        concepts = sorted(c for c in (subject, lemma, obj, place) if c)
        tail = f" {phrase} ." if phrase else " ."
        references = tuple(
            f"{d1} {subject} {verb} {d2} {obj}{tail}" for d1, d2 in itertools.product(DETERMINERS, repeat=2)
        )
        examples.append(TextExample(" ".join(concepts), references))

    order = np.random.default_rng(seed).permutation(len(examples))
    n_held = max(1, round(held_out * len(examples))) if held_out > 0 else 0
    if len(examples) - 2 * n_held < 1:
        raise ValueError(f"{len(examples)} concept sets are too few to hold out {held_out:.0%} twice")
    shuffled = [examples[i] for i in order]
    splits = {"train": shuffled[2 * n_held:]}
    if n_held:
        splits["validation"] = shuffled[:n_held]
        splits["test"] = shuffled[n_held:2 * n_held]
    else:
        splits["validation"] = splits["test"] = splits["train"]
    return Task("keywords", splits, default_reward="bleu",
                description="write a sentence using the given concept words (CommonGen-like)")


SYLLABLES = ("ka", "lo", "mi", "ran", "to", "vel", "su", "dor", "pe", "zin",
             "ma", "ri", "no", "tal", "be", "gor", "an", "ex", "ul", "fi")
NAME_POOLS = ("first", "last", "org", "loc", "misc")
ORG_SUFFIXES = ("Corp", "Labs", "Group", "Bank")
MISC_SUFFIXES = ("ian", "ese", "ish")
ENTITY_TEMPLATES = (
    "{PER} works for {ORG} .",
    "{PER} lives in {LOC} .",
    "{ORG} opened an office in {LOC} .",
    "{PER} met {PER} in {LOC} .",
    "{PER} is a {MISC} writer .",
    "{ORG} hired {PER} last year .",
    "she flew from {LOC} to {LOC} .",
    "{MISC} fans gathered in {LOC} .",
    "we had lunch with {PER} .",
    "the {MISC} team lost to {ORG} .",
    "nothing happened today .",
    "the weather was nice .",
)


def _name_pools(seed: int) -> dict[tuple[str, str], list[str]]:
    """Disjoint pools of made-up names, one per (split, pool): no name is in two splits."""
    names = ["".join(s).capitalize() for n in (2, 3) for s in itertools.product(SYLLABLES, repeat=n)]
    names = sorted(set(names))  # different syllables can spell the same name
    order = np.random.default_rng([seed, 99]).permutation(len(names))
    shares = {"train": 0.6, "validation": 0.2, "test": 0.2}
    pools, start = {}, 0
    for split in SPLITS:
        size = int(shares[split] * len(names)) // len(NAME_POOLS)
        for pool in NAME_POOLS:
            pools[split, pool] = [names[i] for i in order[start:start + size]]
            start += size
    return pools


def _entity(kind: str, pools: dict[str, list[str]], rng: np.random.Generator) -> list[str]:
    def pick(pool: str) -> str:
        return pools[pool][rng.integers(len(pools[pool]))]

    if kind == "PER":
        return [pick("first"), pick("last")] if rng.random() < 0.5 else [pick("first")]
    if kind == "ORG":
        return [pick("org"), ORG_SUFFIXES[rng.integers(len(ORG_SUFFIXES))]] if rng.random() < 0.7 else [pick("org")]
    if kind == "LOC":
        return [pick("loc"), "City"] if rng.random() < 0.3 else [pick("loc")]
    return [pick("misc") + MISC_SUFFIXES[rng.integers(len(MISC_SUFFIXES))]]


def entities(n_train: int = 1000, n_validation: int = 200, n_test: int = 200, seed: int = 0) -> Task:
    """Entities (NER): tag PER/ORG/LOC/MISC in template sentences ("Kalo Suvel works for Tozin Labs .").

    Sentences come from a dozen templates (two without entities) filled with made-up
    names. Each split draws its names from its own pool, so validation and test measure
    generalisation to unseen names (they are UNK to a vocabulary built from train) rather
    than memorisation. Persons have one or two tokens, organisations an optional suffix
    (Corp, Labs, ...), locations an optional "City"; MISC are adjectives (Kaloese).
    """
    sizes = _split_sizes("entities", n_train, n_validation, n_test)
    seed = _int_arg("entities", "seed", seed, 0)
    all_pools = _name_pools(seed)
    splits = {}
    for index, (split, size) in enumerate(sizes.items()):
        rng = np.random.default_rng([seed, index])
        pools = {pool: all_pools[split, pool] for pool in NAME_POOLS}
        sentences = []
        for template in rng.choice(ENTITY_TEMPLATES, size=size):
            tokens, tags = [], []
            for word in template.split():
                if word.startswith("{"):
                    kind = word[1:-1]
                    name = _entity(kind, pools, rng)
                    tokens += name
                    tags += [f"B-{kind}"] + [f"I-{kind}"] * (len(name) - 1)
                else:
                    tokens.append(word)
                    tags.append("O")
            sentences.append(TaggedSentence(tuple(tokens), tuple(tags)))
        splits[split] = sentences
    return Task("entities", splits, description="tag PER/ORG/LOC/MISC names in template sentences")


def _split_examples(
    task: str, make: Callable[[np.random.Generator], TextExample], n_train: int, n_validation: int, n_test: int,
    seed: int,
) -> dict[str, list[TextExample]]:
    """Draw each split's examples from its own stream of the seed, so sizes do not interact."""
    sizes = _split_sizes(task, n_train, n_validation, n_test)
    seed = _int_arg(task, "seed", seed, 0)
    splits = {}
    for index, (split, size) in enumerate(sizes.items()):
        rng = np.random.default_rng([seed, index])
        splits[split] = [make(rng) for _ in range(size)]
    return splits


def _pick(rng: np.random.Generator, options: tuple | list):
    return options[int(rng.integers(len(options)))]


def compress(n_subjects: int = 2, n_verbs: int = 2, n_objects: int = 2, n_removable: int = 1,
             n_train: int = 200, n_validation: int = 50, n_test: int = 50, seed: int = 0) -> Task:
    """Compress: delete the removable modifiers, clauses and filler of a sentence.

    The reference is the core ``the SUBJECT VERB-s the OBJECT``. The source adds
    ``n_removable`` pieces of different kinds: an adjective before a noun, an adverb before
    the verb, a filler at the start ("actually", "of course"), a place at the end ("in the
    park") or a clause after the subject ("that was tired"). Deletions alone reach the
    reference: "of course the dog chases the big ball" -> "the dog chases the ball".
    """
    n_subjects, n_verbs, n_objects = _word_counts("compress", n_subjects, n_verbs, n_objects)
    n_removable = _int_arg("compress", "n_removable", n_removable, 1, len(REMOVABLE))

    def make(rng: np.random.Generator) -> TextExample:
        subject, (_, verb), obj = (_pick(rng, SUBJECTS[:n_subjects]), _pick(rng, VERBS[:n_verbs]),
                                   _pick(rng, OBJECTS[:n_objects]))
        kinds = set(rng.choice(REMOVABLE, size=n_removable, replace=False).tolist())
        adjective_on_subject = bool(rng.integers(2))

        def piece(kind: str, where: bool = True) -> list[str]:
            if kind not in kinds or not where:
                return []
            options = {"adjective": ADJECTIVES, "adverb": ADVERBS, "filler": FILLERS,
                       "place": [phrase for _, phrase in PLACES[:3]], "clause": CLAUSES}[kind]
            return _pick(rng, options).split()

        source = (piece("filler") + ["the"] + piece("adjective", adjective_on_subject) + [subject]
                  + piece("clause") + piece("adverb") + [verb, "the"]
                  + piece("adjective", not adjective_on_subject) + [obj] + piece("place"))
        return TextExample(" ".join(source), (f"the {subject} {verb} the {obj}",))

    splits = _split_examples("compress", make, n_train, n_validation, n_test, seed)
    return Task("compress", splits, default_reward="rougeL",
                description="delete the removable words of a sentence (deletion-based compression)")


def fix(n_subjects: int = 2, n_verbs: int = 2, n_objects: int = 2, n_adjectives: int = 0, n_corruptions: int = 1,
        corruptions: tuple[str, ...] | list[str] = CORRUPTIONS, n_train: int = 200, n_validation: int = 50,
        n_test: int = 50, seed: int = 0) -> Task:
    """Fix: repair a sentence whose words were swapped, duplicated, replaced or dropped.

    The reference is a clean sentence ``the [ADJECTIVE] SUBJECT VERB-s the OBJECT`` (an
    adjective when ``n_adjectives > 0``). The source applies ``n_corruptions`` corruptions
    drawn from ``corruptions``: "swap" two neighbouring words, "duplicate" a word, put a
    "wrong" word of the same kind in its place, or "drop" a word. Fixing needs replace and
    insert as well as delete: "the dog chases ball" -> "the dog chases the ball".
    """
    n_subjects, n_verbs, n_objects = _word_counts("fix", n_subjects, n_verbs, n_objects)
    n_adjectives = _int_arg("fix", "n_adjectives", n_adjectives, 0, len(ADJECTIVES))
    n_corruptions = _int_arg("fix", "n_corruptions", n_corruptions, 1, 3)
    if (not isinstance(corruptions, (list, tuple)) or not corruptions
            or not all(isinstance(c, str) and c in CORRUPTIONS for c in corruptions)):
        raise ValueError(
            f"task 'fix': corruptions must be a non-empty list of {list(CORRUPTIONS)}, got {corruptions!r}"
        )
    corruptions = tuple(corruptions)
    nouns = SUBJECTS[:n_subjects] + OBJECTS[:n_objects]
    # the words a "wrong" corruption may put in place of a word of each kind
    same_kind = {"det": DETERMINERS, "noun": nouns, "verb": tuple(v for _, v in VERBS[:n_verbs]),
                 "adjective": ADJECTIVES[:n_adjectives]}

    def corrupt(rng: np.random.Generator, words: list[str], kinds: list[str]) -> None:
        kind = _pick(rng, corruptions)
        if kind == "swap":
            sites = [i for i in range(len(words) - 1) if words[i] != words[i + 1]]
        elif kind == "wrong":
            sites = [i for i in range(len(words)) if len(set(same_kind[kinds[i]]) - {words[i]}) > 0]
        else:
            sites = list(range(len(words)))
        i = _pick(rng, sites)
        if kind == "swap":
            words[i], words[i + 1] = words[i + 1], words[i]
            kinds[i], kinds[i + 1] = kinds[i + 1], kinds[i]
        elif kind == "duplicate":
            words.insert(i, words[i])
            kinds.insert(i, kinds[i])
        elif kind == "wrong":
            words[i] = _pick(rng, sorted(set(same_kind[kinds[i]]) - {words[i]}))
        else:
            del words[i], kinds[i]

    def make(rng: np.random.Generator) -> TextExample:
        adjective = [_pick(rng, ADJECTIVES[:n_adjectives])] if n_adjectives else []
        clean = (["the"] + adjective + [_pick(rng, SUBJECTS[:n_subjects]), _pick(rng, VERBS[:n_verbs])[1], "the",
                                        _pick(rng, OBJECTS[:n_objects])])
        clean_kinds = ["det"] + ["adjective"] * len(adjective) + ["noun", "verb", "det", "noun"]
        words = clean
        while words == clean:  # corruptions can cancel out, as a swap and its reverse
            words, kinds = list(clean), list(clean_kinds)
            for _ in range(n_corruptions):
                corrupt(rng, words, kinds)
        return TextExample(" ".join(words), (" ".join(clean),))

    splits = _split_examples("fix", make, n_train, n_validation, n_test, seed)
    return Task("fix", splits, default_reward="rougeL",
                description="repair swapped, duplicated, wrong or dropped words")


BUILTIN_TASKS: dict[str, Callable[..., Task]] = {
    "copy": copy,
    "reverse": reverse,
    "sort": sort,
    "keywords": keywords,
    "entities": entities,
    "compress": compress,
    "fix": fix,
}
TAGGED_TASKS = frozenset({"entities"})  # built-ins whose examples are TaggedSentences (NER)
