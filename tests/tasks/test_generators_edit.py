"""The built-in edit tasks: compress and fix."""

import gymnasium as gym
import pytest

import textgym  # noqa: F401
from textgym.tasks import BUILTIN_TASKS, load_task
from textgym.tasks.generators import ADJECTIVES, ADVERBS, CLAUSES, FILLERS, PLACES


def is_subsequence(short, long):
    words = iter(long)
    return all(word in words for word in short)


@pytest.mark.parametrize("name", ["compress", "fix"])
def test_deterministic_from_the_seed_with_sized_splits(name):
    task = load_task(name, {"n_train": 30, "n_validation": 7, "n_test": 5, "seed": 3})
    assert task == load_task(name, {"n_train": 30, "n_validation": 7, "n_test": 5, "seed": 3})
    assert [len(task.split(s)) for s in ("train", "validation", "test")] == [30, 7, 5]
    assert task.default_reward == "rougeL" and task.name == name
    assert load_task(name, {"seed": 4}).split("train") != load_task(name).split("train")
    # each split draws from its own stream: a bigger train split leaves the test split alone
    assert load_task(name, {"n_train": 10}).split("test") == load_task(name).split("test")


def test_defaults_are_small():
    for name in ("compress", "fix"):
        task = load_task(name)
        assert len(task.split("train")) == 200
        assert len({word for text in task.texts() for word in text.split()}) <= 40


def test_compress_reference_is_reachable_by_deletions():
    phrases = ADJECTIVES + ADVERBS + FILLERS + CLAUSES + tuple(phrase for _, phrase in PLACES)
    removable = {word for phrase in phrases for word in phrase.split()}
    task = load_task("compress", {"n_removable": 3, "n_subjects": 5, "n_train": 300})
    for example in task.examples():
        source, (reference,) = example.prompt.split(), example.references
        core = reference.split()
        assert len(core) == 5 and core[0] == core[3] == "the"
        assert is_subsequence(core, source) and len(source) > len(core)
        extra = list(source)
        for word in core:
            extra.remove(word)
        assert set(extra) <= removable
    # n_removable pieces of different kinds: a sentence with every kind is long
    longest = max(len(e.prompt.split()) for e in load_task("compress", {"n_removable": 5}).examples())
    assert longest >= 5 + 2 + 1 + 1 + 3 + 3 - 1


@pytest.mark.parametrize(
    "kind, check",
    [
        ("drop", lambda src, ref: len(src) == len(ref) - 1 and is_subsequence(src, ref)),
        ("duplicate", lambda src, ref: len(src) == len(ref) + 1 and is_subsequence(ref, src)),
        ("swap", lambda src, ref: sorted(src) == sorted(ref) and sum(a != b for a, b in zip(src, ref)) == 2),
        ("wrong", lambda src, ref: len(src) == len(ref) and sum(a != b for a, b in zip(src, ref)) == 1),
    ],
)
def test_fix_corruptions(kind, check):
    task = load_task("fix", {"corruptions": [kind], "n_adjectives": 2})
    for example in task.examples():
        source, reference = example.prompt.split(), example.references[0].split()
        assert source != reference and check(source, reference), (example.prompt, example.references)


def test_fix_needs_replace_and_insert():
    from textgym.envs.token_edit import edit_script

    env = gym.make("TokenEdit-Fix-v0").unwrapped
    ops = set()
    for example in env.examples:
        ops |= {op for op, _ in edit_script(env.vocab.encode(example.prompt), env.vocab.encode(example.references[0]))}
    assert {"delete", "replace", "insert"} <= ops


@pytest.mark.parametrize(
    "name, kwargs, message",
    [
        ("compress", {"n_removable": 0}, "n_removable must be an int between 1 and 5, got 0"),
        ("compress", {"n_subjects": 11}, "n_subjects must be an int between 1 and 10, got 11"),
        ("compress", {"n_train": 0}, "n_train must be a positive int, got 0"),
        ("fix", {"corruptions": ["swap", "shuffle"]}, "corruptions must be a non-empty list of \\['swap'"),
        ("fix", {"corruptions": "swap"}, "corruptions must be a non-empty list"),
        ("fix", {"n_corruptions": 4}, "n_corruptions must be an int between 1 and 3, got 4"),
        ("fix", {"n_adjectives": 9}, "n_adjectives must be an int between 0 and 3, got 9"),
    ],
)
def test_bad_sizes(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_task(name, kwargs)


@pytest.mark.parametrize("name", ["compress", "fix"])
def test_token_gen_runs_on_the_edit_tasks(name):
    assert name in BUILTIN_TASKS
    env = gym.make("TokenGen-v0", task=name)
    _, info = env.reset(seed=0)
    vocab = env.unwrapped.vocab
    for token in vocab.encode(env.unwrapped.example.references[0]) + [vocab.eos_id]:
        *_, terminated, truncated, info = env.step(token)
        if terminated or truncated:
            break
    assert info["metrics"]["rougeL"] == 1.0
