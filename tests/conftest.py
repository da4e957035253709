import os

# Never wait on a hub lookup: everything textgym does is offline.
for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_EVALUATE_OFFLINE", "HF_DATASETS_OFFLINE"):
    os.environ.setdefault(var, "1")
# One torch (OpenMP) thread in the tests and their subprocesses: the models are tiny, and on
# a loaded machine more threads make them 5-10x slower (a README block: 14 s with 1 thread,
# 117 s with 2), and results and timings then do not depend on the machine's core count.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from fnmatch import fnmatchcase  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Tests that run a subprocess or train an agent to a score, a few seconds each: marked
# `slow` here, in one place, so that `pytest -m "not slow"` is the quick loop. Patterns
# match test ids (path::name[params]).
SLOW_TESTS = (
    "tests/test_cli.py::*",
    "tests/test_examples.py::test_example_runs_quickly*",
    "tests/test_readme.py::test_every_python_block_runs*",
    "tests/test_benchmarks.py::test_*_benchmark_*",
    "tests/test_sb3.py::test_ppo_learns_*",
    "tests/agents/test_dqn.py::test_beats_random_*",
    "tests/agents/test_tabular_q.py::test_solves_*",
    "tests/agents/test_lm_ppo.py::test_warm_started_run_*",
    "tests/agents/test_lm_policies.py::test_warm_start*",
    "tests/agents/test_lm_policies.py::test_warm_started_*",
    "tests/agents/test_lm_policies.py::test_ppo_alone_*",
    "tests/agents/test_lm_group.py::test_group_baseline_learns_*",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(fnmatchcase(item.nodeid, pattern) for pattern in SLOW_TESTS):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def tokenizer_dir(tmp_path) -> Path:
    """A word-level transformers tokenizer saved to a local directory (no download)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<pad>", "<s>", "</s>", "<unk>", "hi", "hello", "there", ".", "bye", "see", "you"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    tokenizer.save_pretrained(tmp_path / "tok")
    return tmp_path / "tok"


def _byte_level_tokenizer():
    """A small byte-level BPE (GPT-2 style), trained here: its tokens split UTF-8 characters
    and carry their leading space, the cases an incremental decoder must get right."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<eos>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    backend.train_from_iterator(["héllo wörld, naïve café", "the cat sat on the mat", "日本語 テキスト"], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>")


def _word_piece_tokenizer():
    """A small BERT-style WordPiece, trained here: "##" pieces continue a word, and both
    decoding clean-ups are on, so decoding a token can change the text before it
    ("don ' t" becomes "don't")."""
    import string

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=False)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece()
    characters = [c for c in string.printable if not c.isspace()]
    trainer = trainers.WordPieceTrainer(vocab_size=200, initial_alphabet=characters, show_progress=False,
                                        special_tokens=["[PAD]", "[UNK]", "[SEP]"])
    backend.train_from_iterator(["the dog don't see it's a ball.", "hello, world! what?", "café naïve 3.5 x-y"], trainer)
    return PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="[SEP]", pad_token="[PAD]", unk_token="[UNK]",
                                   clean_up_tokenization_spaces=True)


@pytest.fixture(scope="session")
def subword_tokenizers() -> dict:
    """Two transformers tokenizers built here, by name: "byte_level" and "word_piece"."""
    return {"byte_level": _byte_level_tokenizer(), "word_piece": _word_piece_tokenizer()}
