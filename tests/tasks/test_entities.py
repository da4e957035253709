import pytest

from textgym.tasks import TaggedSentence, load_task
from textgym.tasks.generators import entities


def entity_words(sentences):
    return {token for s in sentences for token, tag in zip(s.tokens, s.tags) if tag != "O"}


def test_entities_is_deterministic_with_disjoint_names_across_splits():
    task = entities()
    assert task == entities() and task != entities(seed=1)
    train, validation, test = (task.split(s) for s in ("train", "validation", "test"))
    assert (len(train), len(validation), len(test)) == (1000, 200, 200)
    suffixes = {"Corp", "Labs", "Group", "Bank", "City"}  # shared words inside entities
    names = [entity_words(split) - suffixes for split in (train, validation, test)]
    assert not (names[0] & names[1]) and not (names[0] & names[2]) and not (names[1] & names[2])
    types = {tag[2:] for s in train for tag in s.tags if tag != "O"}
    assert types == {"PER", "ORG", "LOC", "MISC"}
    assert any(set(s.tags) == {"O"} for s in train)  # some sentences have no entity


def test_entities_sizes_and_errors():
    task = load_task("entities", {"n_train": 5, "n_test": 3}, example_type=TaggedSentence)
    assert len(task.split("train")) == 5 and len(task.split("test")) == 3
    with pytest.raises(ValueError, match="n_train must be a positive int, got 0"):
        entities(n_train=0)
    with pytest.raises(ValueError, match="unknown task_kwargs \\['length'\\] for task 'entities'"):
        load_task("entities", {"length": 3}, example_type=TaggedSentence)
