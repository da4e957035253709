import json

import numpy as np
import pytest

from textgym.tasks import TaggedSentence, Task, TextExample, load_task, read_conll, to_iob2
from textgym.tasks.conll import load_tagged, sentence_from_row


def write(tmp_path, text, name="data.conll"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_sentences_skipping_docstart_and_blank_or_tab_only_lines(tmp_path):
    path = write(tmp_path, "-DOCSTART- O\n\nJohn\tB-PER\nSmith\tI-PER\nran\tO\n\t\nin\tO\nParis\tB-LOC\n\n\n")
    assert read_conll(path) == [
        TaggedSentence(("John", "Smith", "ran"), ("B-PER", "I-PER", "O")),
        TaggedSentence(("in", "Paris"), ("O", "B-LOC")),
    ]


def test_columns_are_configurable_and_spaces_separate_without_tabs(tmp_path):
    path = write(tmp_path, "EU NNP B-NP B-ORG\nrejects VBZ B-VP O\n")
    assert read_conll(path) == [TaggedSentence(("EU", "rejects"), ("B-ORG", "O"))]
    assert read_conll(path, token_column=1, tag_column=2) == [TaggedSentence(("NNP", "VBZ"), ("B-NP", "B-VP"))]


def test_iob1_is_converted_to_iob2(tmp_path):
    # IOB1 (CoNLL-2003 original): I- starts an entity, B- only splits two adjacent ones
    path = write(tmp_path, "EU I-ORG\nand O\nUK I-LOC\nGerman I-MISC\nBritish B-MISC\nlamb O\n")
    assert read_conll(path)[0].tags == ("B-ORG", "O", "B-LOC", "B-MISC", "B-MISC", "O")
    assert read_conll(path, scheme="iob1") == read_conll(path)


def test_bioes_is_converted_to_iob2():
    tags = ["S-PER", "O", "B-ORG", "I-ORG", "E-ORG", "S-LOC", "B-LOC", "E-LOC"]
    assert to_iob2(tags) == ["B-PER", "O", "B-ORG", "I-ORG", "I-ORG", "B-LOC", "B-LOC", "I-LOC"]
    assert to_iob2(tags, scheme="bioes") == to_iob2(tags)


def test_valid_iob2_is_unchanged_and_strict_iob2_rejects_stray_inside_tags():
    tags = ["B-PER", "I-PER", "B-PER", "O", "B-LOC"]
    assert to_iob2(tags) == to_iob2(tags, "iob2") == tags
    with pytest.raises(ValueError, match="tag 1: 'I-LOC' continues no entity"):
        to_iob2(["O", "I-LOC"], scheme="iob2")
    with pytest.raises(ValueError, match="unknown tag scheme 'bilou'; valid: \\['auto', 'iob1', 'iob2', 'bioes'\\]"):
        to_iob2(["O"], scheme="bilou")


@pytest.mark.parametrize(
    "text, lineno, message",
    [
        ("John B-PER\nlonely\n", 2, "expected a token and a tag"),
        ("John B-PER\n\nSmith X-PER\n", 3, "'X-PER' is not a valid IOB1 tag"),
        ("John B-PER\nSmith I-\n", 2, "'I-' is not a valid IOB1 tag"),
        ("a O\nJohn S-PER\nSmith Q-PER\n", 3, "'Q-PER' is not a valid BIOES tag"),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, text, lineno, message):
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=f"data.conll:{lineno}: .*{message}"):
        read_conll(path)


def test_missing_columns_and_empty_files_are_errors(tmp_path):
    with pytest.raises(ValueError, match=r"data.conll:1: 2 column\(s\).*tag_column=3"):
        read_conll(write(tmp_path, "John B-PER\n"), tag_column=3)
    with pytest.raises(ValueError, match="no sentences"):
        read_conll(write(tmp_path, "-DOCSTART- O\n\n"))
    with pytest.raises(FileNotFoundError, match="nope.conll"):
        read_conll(tmp_path / "nope.conll")


def test_jsonl_rows_lists_and_errors(tmp_path):
    rows = [{"tokens": ["Ann", "ran"], "tags": ["B-PER", "O"]}, {"tokens": ["Rome"], "tags": ["S-LOC"]}]
    path = write(tmp_path, "\n".join(map(json.dumps, rows)), "ner.jsonl")
    expected = [TaggedSentence(("Ann", "ran"), ("B-PER", "O")), TaggedSentence(("Rome",), ("B-LOC",))]
    assert load_tagged(path) == load_tagged(rows) == expected
    path = write(tmp_path, json.dumps({"tokens": ["a", "b"], "tags": ["O"]}), "bad.jsonl")
    with pytest.raises(ValueError, match="bad.jsonl:1: 2 tokens but 1 tags"):
        load_tagged(path)
    with pytest.raises(ValueError, match="row 0: expected fields 'tokens' and 'tags'"):
        load_tagged([{"words": ["a"]}])
    with pytest.raises(ValueError, match="row 0: integer tags need label names"):
        load_tagged([{"tokens": ["a"], "ner_tags": [0]}])


def test_integer_tags_with_label_names():
    row = {"tokens": ["Ann", "ran"], "ner_tags": [1, 0]}
    assert sentence_from_row(row, "row 0", ["O", "B-PER"]) == TaggedSentence(("Ann", "ran"), ("B-PER", "O"))
    with pytest.raises(ValueError, match="row 0: tag 0: 5 is not a tag id; ids are ints from 0 to 1"):
        sentence_from_row({"tokens": ["a", "b"], "ner_tags": [5, 0]}, "row 0", ["O", "B-PER"])


def test_hf_dataset_with_classlabel_tags():
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({
        "tokens": datasets.Sequence(datasets.Value("string")),
        "ner_tags": datasets.Sequence(datasets.ClassLabel(names=["O", "B-PER", "I-PER"])),
    })
    train = datasets.Dataset.from_dict({"tokens": [["Ann", "Lee", "ran"]], "ner_tags": [[1, 2, 0]]}, features=features)
    task = load_task(datasets.DatasetDict({"train": train, "dev": train}), example_type=TaggedSentence)
    assert task.split("validation")[0] == TaggedSentence(("Ann", "Lee", "ran"), ("B-PER", "I-PER", "O"))


def test_load_task_for_tagged_examples(tmp_path):
    path = write(tmp_path, "x NN I-PER\ny NN O\n")
    task = load_task(path, {"tag_column": 2}, example_type=TaggedSentence)
    assert task.split("test")[0].tags == ("B-PER", "O")  # a single file serves every split
    with pytest.raises(ValueError, match="unknown task_kwargs \\['columns'\\].*valid: \\['token_column'"):
        load_task(path, {"columns": 2}, example_type=TaggedSentence)
    with pytest.raises(ValueError, match="task 'copy' is not a TaggedSentence task; built-in ones: \\['entities'\\]"):
        load_task("copy", example_type=TaggedSentence)
    with pytest.raises(ValueError, match="task 'entities' is not a TextExample task"):
        load_task("entities")
    with pytest.raises(ValueError, match="unsupported NER file"):
        load_task(write(tmp_path, "{}", "x.csv"), example_type=TaggedSentence)
    with pytest.raises(ValueError, match="holds TextExamples; this env needs TaggedSentences"):
        load_task(Task.single("t", [TextExample("a", ("b",))]), example_type=TaggedSentence)


def test_text_tasks_keep_rejecting_task_kwargs_for_files(tmp_path):
    path = write(tmp_path, json.dumps({"prompt": "a", "target": "b"}), "t.jsonl")
    with pytest.raises(ValueError, match="only apply to built-in tasks"):
        load_task(path, {"tag_column": 2})


def test_tagged_sentence_checks_iob2():
    with pytest.raises(ValueError, match="tag 1 is 'I-LOC' after 'B-PER'"):
        TaggedSentence(("a", "b"), ("B-PER", "I-LOC"))
    with pytest.raises(ValueError, match="tag 0 is 'PER'"):
        TaggedSentence(("a",), ("PER",))
    assert TaggedSentence(["a", "b"], ["O", "O"]).prompt == "a b"


def test_reads_wnut17(shared_data):
    train = read_conll(shared_data / "wnut17" / "train.conll")
    assert len(train) == 3394  # 1000 blank and 2394 tab-only separators
    types = {tag[2:] for s in train for tag in s.tags if tag != "O"}
    assert types == {"corporation", "creative-work", "group", "location", "person", "product"}


def test_byte_order_mark_is_not_part_of_the_first_token(tmp_path):
    path = tmp_path / "bom.conll"
    path.write_bytes(b"\xef\xbb\xbfEU\tB-ORG\r\nrejects\tO\r\n")
    assert read_conll(path) == [TaggedSentence(("EU", "rejects"), ("B-ORG", "O"))]


def test_numpy_ints_are_column_indexes_and_tag_ids(tmp_path):
    path = write(tmp_path, "EU NNP B-ORG\nrejects VBZ O\n")
    assert read_conll(path, token_column=np.int64(1), tag_column=np.int32(2))[0].tokens == ("NNP", "VBZ")
    row = {"tokens": ("Ann", "ran"), "ner_tags": [np.int64(1), np.int64(0)]}
    assert sentence_from_row(row, "row 0", ["O", "B-PER"]).tags == ("B-PER", "O")
