"""Bad-input corpus, data area: malformed task files, rows, datasets and task arguments.

Each case is a callable that must raise the given error with a message naming where the
bad value is (file:line, or row i) and what was expected.
"""

import json
import tempfile
from pathlib import Path

import datasets
import numpy as np
import pytest

from textgym.envs import NERTagEnv, TokenEditEnv, TokenGenEnv
from textgym.tasks import TaggedSentence, Task, TextExample, load_task, read_conll, to_iob2

_TMP = tempfile.TemporaryDirectory(prefix="textgym-bad-data-")  # removed when the test run ends
NER = TaggedSentence
LABELS = {"label_names": ["O", "B-PER"]}


def _file(name: str, content: bytes | str | list) -> Path:
    """A file in a fresh folder: bytes as given, str as UTF-8, a list as JSONL rows."""
    folder = Path(tempfile.mkdtemp(dir=_TMP.name))
    if isinstance(content, list):
        content = "".join(json.dumps(row) + "\n" for row in content)
    if isinstance(content, str):
        content = content.encode("utf-8")
    (folder / name).write_bytes(content)
    return folder / name


def _ner_rows(rows: list, task_kwargs: dict | None = None):
    return load_task(rows, task_kwargs, example_type=NER)


def _ner_dataset(columns: dict, features: datasets.Features | None = None):
    return load_task(datasets.Dataset.from_dict(columns, features=features), example_type=NER)


CLASS_LABELS = datasets.Features({
    "tokens": datasets.Sequence(datasets.Value("string")),
    "ner_tags": datasets.Sequence(datasets.ClassLabel(names=["O", "B-PER"])),
})
OK = {"prompt": "a", "target": "b"}
OK_NER = {"tokens": ["Ann"], "tags": ["B-PER"]}

BAD_DATA = [
    # --- text rows: "references" is a list of str, "target" one str ---
    pytest.param(lambda: load_task(_file("refs.jsonl", [OK, {"prompt": "p", "references": "abc"}])), ValueError,
                 r"refs\.jsonl:2: 'references' must be a list of str, got the str 'abc'; use 'target' for a single",
                 id="jsonl-references-str"),
    pytest.param(lambda: load_task([{"prompt": "p", "references": "abc"}]), ValueError,
                 r"^row 0: 'references' must be a list of str, got the str 'abc'", id="rows-references-str"),
    pytest.param(lambda: load_task(datasets.Dataset.from_dict({"prompt": ["p", "q"], "references": ["x", "y"]})),
                 ValueError, r"^row 0: 'references' must be a list of str, got the str 'x'",
                 id="hf-references-column-of-str"),
    pytest.param(lambda: load_task([OK, {"prompt": "p", "target": ["a", "b"]}]), ValueError,
                 r"^row 1: 'target' must be one str, got list: \['a', 'b'\]; use 'references' for several",
                 id="rows-target-list"),
    pytest.param(lambda: load_task([{"prompt": "p", "target": None}]), ValueError,
                 r"^row 0: 'target' must be one str, got NoneType: None$", id="rows-target-none"),
    pytest.param(lambda: load_task([{"prompt": "p", "references": ["a", 1]}]), ValueError,
                 r"^row 0: 'references' must be a non-empty list of str, got \['a', 1\]", id="rows-references-int"),
    pytest.param(lambda: load_task([{"prompt": "p", "references": {"a": 1}}]), ValueError,
                 r"^row 0: 'references' must be a non-empty list of str, got \{'a': 1\}", id="rows-references-dict"),
    pytest.param(lambda: load_task(_file("e.jsonl", [{"prompt": "p", "references": []}])), ValueError,
                 r"e\.jsonl:1: 'references' must be a non-empty list of str, got \[\]", id="jsonl-references-empty"),
    pytest.param(lambda: load_task([{"source": None, "target": "t"}]), ValueError,
                 r"^row 0: 'source' must be a str, got NoneType: None", id="rows-source-none"),
    pytest.param(lambda: load_task(_file("p.jsonl", [{"prompt": ["a"], "target": "t"}])), ValueError,
                 r"p\.jsonl:1: 'prompt' must be a str, got list: \['a'\]", id="jsonl-prompt-list"),
    pytest.param(lambda: load_task([OK, "a b"]), ValueError, r"^row 1: expected a JSON object, got str",
                 id="rows-row-is-str"),
    pytest.param(lambda: load_task(_file("m.jsonl", [OK, OK, {"prompt": "p", "answer": "t"}])), ValueError,
                 r"m\.jsonl:3: missing field; expected one of \['references', 'target'\] as in .*m\.jsonl:1 \(a reference-free",
                 id="jsonl-missing-references"),
    pytest.param(lambda: load_task(_file("j.jsonl", '{"prompt": "a", "target": "b"}\n\n{"prompt": "p"')), ValueError,
                 r"j\.jsonl:3: invalid JSON: Expecting ',' delimiter", id="jsonl-invalid-json"),
    pytest.param(lambda: load_task(_file("empty.jsonl", "\n  \n")), ValueError, r"empty\.jsonl: no examples in file",
                 id="jsonl-empty"),
    pytest.param(lambda: load_task(_file("bom.jsonl", b"\xef\xbb\xbf\n")), ValueError,
                 r"bom\.jsonl: no examples in file", id="jsonl-only-bom"),
    pytest.param(lambda: TextExample("p", "abc"), TypeError, r"references must be a list of str, not str",
                 id="text-example-references-str"),
    # --- bytes that are not UTF-8: file, line and column (in characters) ---
    pytest.param(lambda: load_task(_file("b.jsonl", b'{"prompt": "a", "target": "b"}\n{"prompt": "\xff"}\n')),
                 ValueError, r"b\.jsonl:2: not valid UTF-8 \(byte 0xff at column 13\)$", id="jsonl-not-utf8"),
    pytest.param(lambda: load_task(_file("b.conll", b"a\tO\n\nb\xff\tO\n"), example_type=NER), ValueError,
                 r"b\.conll:3: not valid UTF-8 \(byte 0xff at column 2\)$", id="conll-not-utf8"),
    pytest.param(lambda: read_conll(_file("latin1.conll", "Ann\tB-PER\ncafé\tO\n".encode("latin-1"))), ValueError,
                 r"latin1\.conll:2: not valid UTF-8 \(byte 0xe9 at column 4\)$", id="conll-latin1"),
    pytest.param(lambda: read_conll(_file("bom.conll", b"\xef\xbb\xbf\xc3\xa9\xfe\tO\n")), ValueError,
                 r"bom\.conll:1: not valid UTF-8 \(byte 0xfe at column 2\)$", id="conll-bom-then-bad-byte"),
    pytest.param(lambda: read_conll(_file("cr.conll", b"a\tO\r\nb\tO\r\n\r\nc\x80\tO\r\n")), ValueError,
                 r"cr\.conll:4: not valid UTF-8 \(byte 0x80 at column 2\)$", id="conll-crlf-not-utf8"),
    pytest.param(lambda: read_conll(_file("utf16.conll", "EU\tB-ORG\n".encode("utf-16"))), ValueError,
                 r"utf16\.conll:1: not valid UTF-8 \(byte 0xff at column 1\); the file is UTF-16, save it as UTF-8",
                 id="conll-utf16"),
    # --- NER rows: tokens are a list of non-blank str ---
    pytest.param(lambda: _ner_rows([{"tokens": "EU", "tags": ["B-PER", "O"]}]), ValueError,
                 r"^row 0: tokens must be a list of str, not str: 'EU'", id="ner-rows-tokens-str"),
    pytest.param(lambda: load_task(_file("t.jsonl", [OK_NER, {"tokens": "EU", "tags": ["O", "O"]}]), example_type=NER),
                 ValueError, r"t\.jsonl:2: tokens must be a list of str, not str: 'EU'", id="ner-jsonl-tokens-str"),
    pytest.param(lambda: _ner_rows([{"tokens": {"a": 1}, "tags": ["O"]}]), ValueError,
                 r"^row 0: tokens must be a list of str, not dict: \{'a': 1\}", id="ner-tokens-dict"),
    pytest.param(lambda: _ner_rows([OK_NER, {"tokens": [], "tags": []}]), ValueError,
                 r"^row 1: tokens must be a non-empty list of str", id="ner-tokens-empty"),
    pytest.param(lambda: _ner_rows([{"tokens": ["a", " "], "tags": ["O", "O"]}]), ValueError,
                 r"^row 0: token 1 is ' '; a token is a str with at least one non-space character",
                 id="ner-token-whitespace"),
    pytest.param(lambda: load_task(_file("w.jsonl", [{"tokens": ["\t", "a"], "tags": ["O", "O"]}]), example_type=NER),
                 ValueError, r"w\.jsonl:1: token 0 is '\\t'", id="ner-jsonl-token-tab"),
    pytest.param(lambda: _ner_rows([{"tokens": ["a", ""], "tags": ["O", "O"]}]), ValueError, r"^row 0: token 1 is ''",
                 id="ner-token-empty-str"),
    pytest.param(lambda: _ner_rows([{"tokens": ["a", 7], "tags": ["O", "O"]}]), ValueError, r"^row 0: token 1 is 7",
                 id="ner-token-int"),
    pytest.param(lambda: _ner_rows([{"tokens": ["a"], "tags": "O"}]), ValueError,
                 r"^row 0: tags must be a list, got str: 'O'", id="ner-tags-str"),
    pytest.param(lambda: _ner_rows([{"tokens": ["a", "b"], "tags": ["O"]}]), ValueError, r"^row 0: 2 tokens but 1 tags",
                 id="ner-tags-too-few"),
    # --- NER integer tags: ids 0 .. len(label_names) - 1 ---
    pytest.param(lambda: _ner_rows([{"tokens": ["a", "b"], "ner_tags": [0, -1]}], LABELS), ValueError,
                 r"^row 0: tag 1: -1 is not a tag id; ids are ints from 0 to 1, the indexes of label_names",
                 id="ner-tag-id-negative"),
    pytest.param(lambda: _ner_rows([{"tokens": ["a"], "ner_tags": [True]}], LABELS), ValueError,
                 r"^row 0: tag 0: True is not a tag id", id="ner-tag-id-bool"),
    pytest.param(lambda: _ner_rows([{"tokens": ["a"], "ner_tags": [2]}], LABELS), ValueError,
                 r"^row 0: tag 0: 2 is not a tag id; ids are ints from 0 to 1", id="ner-tag-id-too-big"),
    pytest.param(lambda: _ner_rows([{"tokens": ["a"], "ner_tags": [1.0]}], LABELS), ValueError,
                 r"^row 0: tag 0: 1.0 is not a tag id", id="ner-tag-id-float"),
    pytest.param(lambda: _ner_rows([{"tokens": ["a", "b"], "ner_tags": ["O", 1]}], LABELS), ValueError,
                 r"^row 0: tag 0: 'O' is not a tag id", id="ner-tags-mix-str-and-int"),
    pytest.param(lambda: _ner_rows([{"tokens": ["a"], "ner_tags": [0]}]), ValueError,
                 r"^row 0: integer tags need label names \(task_kwargs=\{'label_names'", id="ner-tag-ids-no-names"),
    pytest.param(lambda: load_task(_file("i.jsonl", [{"tokens": ["a"], "ner_tags": [-1]}]), LABELS, example_type=NER),
                 ValueError, r"i\.jsonl:1: tag 0: -1 is not a tag id", id="ner-jsonl-tag-id-negative"),
    # --- NER Hugging Face datasets ---
    pytest.param(lambda: _ner_dataset({"tokens": ["Ann Lee", "Bo"], "tags": [["B-PER", "I-PER"], ["O"]]}), ValueError,
                 r"^row 0: tokens must be a list of str, not str: 'Ann Lee'", id="ner-hf-tokens-column-of-str"),
    pytest.param(lambda: _ner_dataset({"tokens": [["Ann"], ["Bo", "ran"]], "ner_tags": [[1], [1, -1]]}, CLASS_LABELS),
                 ValueError, r"^row 1: tag 1: -1 is not a tag id; ids are ints from 0 to 1",
                 id="ner-hf-classlabel-minus-one"),
    pytest.param(lambda: _ner_dataset({"tokens": [["Ann", "  "]], "tags": [["B-PER", "O"]]}), ValueError,
                 r"^row 0: token 1 is '  '", id="ner-hf-token-whitespace"),
    # --- NER reader options (task_kwargs of a file or dataset) ---
    pytest.param(lambda: load_task(_file("c.conll", "a\tO\n"), {"token_column": "0"}, example_type=NER), ValueError,
                 r"token_column must be an int column index \(negative counts from the end\), got '0'",
                 id="conll-token-column-str"),
    pytest.param(lambda: read_conll(_file("c.conll", "a\tO\n"), tag_column=True), ValueError,
                 r"tag_column must be an int column index .*got True", id="conll-tag-column-bool"),
    pytest.param(lambda: read_conll(_file("c.conll", "a\tb\tO\n"), token_column=1, tag_column=1), ValueError,
                 r"token_column and tag_column are both 1", id="conll-same-columns"),
    pytest.param(lambda: load_task(_file("c.conll", "a\tO\n"), {"scheme": 5}, example_type=NER), ValueError,
                 r"unknown tag scheme 5; valid: \['auto', 'iob1', 'iob2', 'bioes'\]", id="conll-scheme-int"),
    pytest.param(lambda: _ner_rows([{"tokens": ["a"], "ner_tags": [0]}], {"label_names": "O B-PER"}), ValueError,
                 r"label_names must be a non-empty list of str tags, got 'O B-PER'", id="ner-label-names-str"),
    pytest.param(lambda: _ner_rows([{"tokens": ["a"], "ner_tags": [0]}], {"label_names": []}), ValueError,
                 r"label_names must be a non-empty list of str tags, got \[\]", id="ner-label-names-empty"),
    pytest.param(lambda: to_iob2([0, 1]), ValueError, r"tags must be a list of str, got \[0, 1\]",
                 id="to-iob2-int-tags"),
    pytest.param(lambda: to_iob2("B-PER"), ValueError, r"tags must be a list of str, got 'B-PER'", id="to-iob2-str"),
    pytest.param(lambda: read_conll(_file("d.conll", "-DOCSTART- O\n\n")), ValueError,
                 r"d\.conll: no sentences in file",
                 id="conll-only-docstart"),
    # --- the task argument ---
    pytest.param(lambda: load_task({}), ValueError,
                 r"task 'custom' has no splits; give at least one of \['train', 'validation', 'test'\]",
                 id="task-empty-dict"),
    pytest.param(lambda: Task("t", {}), ValueError, r"task 't' has no splits", id="task-class-no-splits"),
    pytest.param(lambda: Task("t", [TextExample("p", ("r",))]), TypeError,
                 r"splits of task 't' must be a \{split: examples\} dict, not list", id="task-class-splits-list"),
    pytest.param(lambda: load_task({"train": []}), ValueError, r"the task has no examples", id="task-empty-split"),
    pytest.param(lambda: load_task({"dev2": [OK]}), ValueError, r"unknown split 'dev2'; valid splits",
                 id="task-unknown-split"),
    pytest.param(lambda: load_task(3), TypeError,
                 r"cannot read examples from int 3; task is a built-in task name, a file path, .* or a Task",
                 id="task-int"),
    pytest.param(lambda: load_task(None, example_type=NER), TypeError,
                 r"cannot read tagged sentences from NoneType None; task is a built-in task name", id="ner-task-none"),
    pytest.param(lambda: load_task("copyy"), ValueError, r"unknown task 'copyy'; built-in tasks: \['compress', 'copy'",
                 id="task-unknown-name"),
    # --- the task_kwargs argument ---
    pytest.param(lambda: load_task("copy", "x"), ValueError,
                 r"task_kwargs must be a dict of keyword arguments by name, got 'x'", id="task-kwargs-str"),
    pytest.param(lambda: load_task("copy", [("length", 3)]), ValueError,
                 r"task_kwargs must be a dict of keyword arguments by name, got \[\('length', 3\)\]",
                 id="task-kwargs-list"),
    pytest.param(lambda: load_task("copy", {1: 2, "length": 3}), ValueError,
                 r"task_kwargs must be a dict of keyword arguments by name, got \{1: 2", id="task-kwargs-int-key"),
    pytest.param(lambda: load_task("copy", {"n_symbol": 3}), ValueError,
                 r"unknown task_kwargs \['n_symbol'\] for task 'copy'; valid: \['length', 'n_symbols'",
                 id="task-kwargs-unknown"),
    # --- built-in generator arguments: ints (numpy ints too), never bools or floats ---
    pytest.param(lambda: load_task("copy", {"n_symbols": 1.5}), ValueError,
                 r"task 'copy': n_symbols must be an int between 1 and 26, got 1\.5", id="copy-n-symbols-float"),
    pytest.param(lambda: load_task("copy", {"n_symbols": 27}), ValueError,
                 r"task 'copy': n_symbols must be an int between 1 and 26, got 27", id="copy-n-symbols-27"),
    pytest.param(lambda: load_task("copy", {"length": True}), ValueError,
                 r"task 'copy': length must be a positive int, got True", id="copy-length-bool"),
    pytest.param(lambda: load_task("reverse", {"n_train": 2.0}), ValueError,
                 r"task 'reverse': n_train must be a positive int, got 2\.0", id="reverse-n-train-float"),
    pytest.param(lambda: load_task("sort", {"seed": -1}), ValueError,
                 r"task 'sort': seed must be a non-negative int, got -1", id="sort-seed-negative"),
    pytest.param(lambda: load_task("keywords", {"held_out": True}), ValueError,
                 r"task 'keywords': held_out must be a fraction in \[0, 0\.5\), got True", id="keywords-held-out-bool"),
    pytest.param(lambda: load_task("keywords", {"held_out": "0.2"}), ValueError,
                 r"task 'keywords': held_out must be a fraction in \[0, 0\.5\), got '0\.2'",
                 id="keywords-held-out-str"),
    pytest.param(lambda: load_task("keywords", {"places": 1.0}), ValueError,
                 r"task 'keywords': places must be an int between 0 and 5, got 1\.0", id="keywords-places-float"),
    pytest.param(lambda: load_task("compress", {"n_removable": np.float64(2)}), ValueError,
                 r"task 'compress': n_removable must be an int between 1 and 5, got np\.float64\(2\.0\)",
                 id="compress-n-removable-numpy-float"),
    pytest.param(lambda: load_task("compress", {"n_verbs": np.bool_(True)}), ValueError,
                 r"task 'compress': n_verbs must be an int between 1 and 10, got np\.True_", id="compress-numpy-bool"),
    pytest.param(lambda: load_task("fix", {"corruptions": "swap"}), ValueError,
                 r"task 'fix': corruptions must be a non-empty list of \['swap', 'duplicate', 'wrong', 'drop'\], "
                 r"got 'swap'",
                 id="fix-corruptions-str"),
    pytest.param(lambda: load_task("fix", {"corruptions": ["swap", 1]}), ValueError,
                 r"task 'fix': corruptions must be a non-empty list of .*got \['swap', 1\]", id="fix-corruptions-int"),
    pytest.param(lambda: load_task("entities", {"n_test": 0}, example_type=NER), ValueError,
                 r"task 'entities': n_test must be a positive int, got 0", id="entities-n-test-zero"),
    pytest.param(lambda: load_task("entities", {"seed": "0"}, example_type=NER), ValueError,
                 r"task 'entities': seed must be a non-negative int, got '0'", id="entities-seed-str"),
    # --- the same errors at env construction ---
    pytest.param(lambda: TokenGenEnv(task={}), ValueError, r"task 'custom' has no splits", id="token-gen-task-empty"),
    pytest.param(lambda: TokenEditEnv(task="copy", task_kwargs="x"), ValueError,
                 r"task_kwargs must be a dict of keyword arguments by name, got 'x'", id="token-edit-task-kwargs-str"),
    pytest.param(lambda: NERTagEnv(task=_file("c.conll", "a\tO\n"), task_kwargs={"token_column": "0"}), ValueError,
                 r"token_column must be an int column index", id="ner-tag-token-column-str"),
    pytest.param(lambda: TokenGenEnv(task=_file("r.jsonl", [{"prompt": "p", "references": "ab"}])), ValueError,
                 r"r\.jsonl:1: 'references' must be a list of str, got the str 'ab'", id="token-gen-references-str"),
]


@pytest.mark.parametrize("make, error, message", BAD_DATA)
def test_bad_data_raises_a_clear_error(make, error, message):
    with pytest.raises(error, match=message):
        make()
