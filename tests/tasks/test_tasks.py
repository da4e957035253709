import json

import numpy as np
import pytest

from textgym.tasks import BUILTIN_TASKS, TaggedSentence, Task, TextExample, load_task
from textgym.tasks.generators import TAGGED_TASKS


def write_jsonl(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


@pytest.mark.parametrize("name", sorted(BUILTIN_TASKS))
def test_builtin_tasks_are_deterministic_and_split(name):
    example_type = TaggedSentence if name in TAGGED_TASKS else TextExample
    task = load_task(name, example_type=example_type)
    assert task == load_task(name, example_type=example_type)
    assert set(task.splits) == {"train", "validation", "test"}
    assert task != load_task(name, {"seed": 1}, example_type=example_type)


@pytest.mark.parametrize(
    "name, prompt, reference", [("copy", "c a d", "c a d"), ("reverse", "c a d", "d a c"), ("sort", "c a d", "a c d")]
)
def test_sequence_tasks(name, prompt, reference):
    task = load_task(name, {"length": 3, "n_symbols": 4, "n_train": 50})
    assert len(task.split("train")) == 50
    example = next(e for e in task.split("train") if len(set(e.prompt.split())) == 3)
    words = example.prompt.split()
    expected = {"copy": words, "reverse": words[::-1], "sort": sorted(words)}[name]
    assert example.references == (" ".join(expected),)
    assert set(" ".join(e.prompt for e in task.split("test")).split()) <= set("abcd")


def test_keywords_grammar_and_held_out_concepts():
    task = load_task("keywords")
    example = task.split("train")[0]
    concepts = example.prompt.split()
    assert concepts == sorted(concepts) and len(concepts) == 3
    assert len(example.references) == 4
    for reference in example.references:
        words = reference.split()
        assert len(words) == 6 and words[-1] == "." and words[0] in ("the", "a")
    train = {e.prompt for e in task.split("train")}
    assert not train & {e.prompt for e in task.split("test")}
    bigger = load_task("keywords", {"places": 2, "n_subjects": 5})
    assert len(list(bigger.examples())) == 5 * 2 * 3 * 2
    assert all(r.endswith(("park .", "river .")) for r in bigger.split("train")[0].references)


def test_jsonl_with_source_and_target_keys(tmp_path):
    rows = [{"prompt": "p", "references": ["r1", "r2"]}, "", {"source": "s", "target": "t"}]
    path = write_jsonl(tmp_path / "data.jsonl", rows)
    task = load_task(str(path))
    assert task.split("train") == [TextExample("p", ("r1", "r2")), TextExample("s", ("t",))]
    assert task.split("test") is task.split("train")  # one file is used whole, whatever the split


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"prompt": "p"', "bad.jsonl:2: invalid JSON"),
        ('{"prompt": "p"}', "bad.jsonl:2: missing field; expected one of \\['references', 'target'\\] as in .*bad.jsonl:1"),
        ('{"prompt": 3, "target": "t"}', "bad.jsonl:2: 'prompt' must be a str, got int: 3"),
        ('{"prompt": "p", "references": []}', "bad.jsonl:2: 'references' must be a non-empty list of str, got \\[\\]"),
        ('["p"]', "bad.jsonl:2: expected a JSON object, got list"),
    ],
)
def test_malformed_jsonl_names_file_and_line(tmp_path, line, message):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "ok", "target": "ok"}, line])
    with pytest.raises(ValueError, match=message):
        load_task(path)


def test_missing_and_unsupported_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="task file not found"):
        load_task(str(tmp_path / "nope.jsonl"))
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(ValueError, match="unsupported task file"):
        load_task(str(tmp_path / "data.csv"))


def test_split_dict_and_rows(tmp_path):
    train = write_jsonl(tmp_path / "train.jsonl", [{"prompt": "a", "target": "b"}])
    task = load_task({"train": str(train), "test": [{"prompt": "c", "target": "d"}]})
    assert task.split("test") == [TextExample("c", ("d",))]
    with pytest.raises(ValueError, match="task 'custom' has no 'validation' split; it has \\['train', 'test'\\]"):
        task.split("validation")
    with pytest.raises(ValueError, match="row 1: missing field"):
        load_task([{"prompt": "a", "target": "b"}, {"prompt": "x"}])


def test_hf_datasets(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = {"prompt": ["a", "b"], "references": [["x"], ["y", "z"]]}
    assert load_task(datasets.Dataset.from_dict(rows)).split("validation")[1] == TextExample("b", ("y", "z"))
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows), "dev": datasets.Dataset.from_dict(rows)})
    assert set(load_task(dd).splits) == {"train", "validation"}


def test_task_texts_and_errors():
    task = Task.single("t", [TextExample("p", ("r",))])
    assert list(task.texts()) == ["p", "r"]
    with pytest.raises(ValueError, match="unknown split 'dev'; valid splits"):
        task.split("dev")
    with pytest.raises(ValueError, match="task_kwargs \\['length'\\] only apply to built-in tasks"):
        load_task([{"prompt": "a", "target": "b"}], {"length": 3})
    assert TextExample("p", ()).references == ()  # reference-free
    with pytest.raises(ValueError, match="references must be a list of str, got \\('r', 3\\)"):
        TextExample("p", ["r", 3])


def test_byte_order_mark_and_windows_line_ends_are_read(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"prompt": "caf\xc3\xa9", "target": "t"}\r\n\r\n{"prompt": "b", "target": "u"}\r\n')
    assert load_task(path).split("train") == [TextExample("café", ("t",)), TextExample("b", ("u",))]


def test_an_empty_reference_is_a_valid_output(tmp_path):
    # "delete everything" (TokenEdit) or "write EOS at once" (TokenGen); the env decides how to score it
    rows = [{"source": "a b", "target": ""}, {"prompt": "c", "references": ["", "d"]}]
    path = write_jsonl(tmp_path / "empty.jsonl", rows)
    assert load_task(path).split("train") == [TextExample("a b", ("",)), TextExample("c", ("", "d"))]


def test_references_are_stored_as_a_tuple():
    assert TextExample("p", ["a", "b"]).references == ("a", "b")


@pytest.mark.parametrize("name", sorted(BUILTIN_TASKS))
def test_builtin_tasks_take_numpy_ints_like_ints(name):
    example_type = TaggedSentence if name in TAGGED_TASKS else TextExample
    sizes = {"n_train": 7, "n_validation": 3, "n_test": 2, "seed": 4}
    if name == "keywords":
        sizes = {"n_subjects": 4, "places": 1, "seed": 4}
    as_numpy = {key: np.int64(value) for key, value in sizes.items()}
    task = load_task(name, as_numpy, example_type=example_type)
    assert task == load_task(name, sizes, example_type=example_type)
    assert task != load_task(name, example_type=example_type)
