import re

import numpy as np
import pytest
import sacrebleu
from hypothesis import given, settings
from hypothesis import strategies as st

from textgym.vocab import SPECIAL_TOKENS, TokenizerVocabulary, Vocabulary, WordVocabulary, word_tokenize


def test_word_tokenize_follows_13a():
    assert word_tokenize("A pizza, with chicken's 3.5 cheese-topped (x).") == [
        "A", "pizza", ",", "with", "chicken's", "3.5", "cheese-topped", "(", "x", ")", ".",
    ]


def test_build_orders_by_frequency_then_alphabet():
    vocab = WordVocabulary.build(["b a b", "c b a ."])
    assert vocab.tokens == SPECIAL_TOKENS + ("b", "a", ".", "c")
    assert (vocab.pad_id, vocab.bos_id, vocab.eos_id, vocab.unk_id) == (0, 1, 2, 3)
    assert len(vocab) == 8


def test_min_freq_max_size_and_lowercase():
    texts = ["The cat", "the dog", "the cat"]
    assert WordVocabulary.build(texts, min_freq=2).tokens[4:] == ("cat", "the")
    assert WordVocabulary.build(texts, max_size=5).tokens[4:] == ("cat",)
    lower = WordVocabulary.build(texts, lowercase=True)
    assert lower.tokens[4:] == ("the", "cat", "dog") and lower.encode("THE") == [4]
    with pytest.raises(ValueError, match="min_freq must be >= 1"):
        WordVocabulary.build(texts, min_freq=0)
    with pytest.raises(ValueError, match="max_size must be >= 4"):
        WordVocabulary.build(texts, max_size=2)


def test_encode_decode_and_unknown_words():
    vocab = WordVocabulary.build(["hello world ."])
    ids = vocab.encode("hello there world.")
    assert ids == [vocab.token_to_id("hello"), vocab.unk_id, vocab.token_to_id("world"), vocab.token_to_id(".")]
    assert vocab.decode([vocab.bos_id] + ids + [vocab.eos_id, vocab.pad_id]) == "hello <unk> world ."
    with pytest.raises(KeyError, match="'there' is not in the vocabulary"):
        vocab.token_to_id("there")


TEXT = st.text(alphabet="abcXYZ019 .,;'-\"()!?&", max_size=40)


@settings(max_examples=200, deadline=None)
@given(reference=TEXT.filter(lambda t: t.strip() and not re.search(r"[.,]{2}[0-9]", t)))
def test_decoded_encoding_scores_bleu_100(reference):
    vocab = WordVocabulary.build([reference])
    decoded = vocab.decode(vocab.encode(reference))
    assert sacrebleu.sentence_bleu(decoded, [reference]).score == pytest.approx(100.0)


def test_save_load_round_trip(tmp_path):
    vocab = WordVocabulary.build(["é un café ."], lowercase=True)
    vocab.save(tmp_path / "vocab.json")
    loaded = Vocabulary.load(tmp_path / "vocab.json")
    assert loaded == vocab and loaded.lowercase
    assert not (tmp_path / "vocab.json.tmp").exists()


def test_load_errors_name_the_file(tmp_path):
    (tmp_path / "bad.json").write_text("{\n nope")
    with pytest.raises(ValueError, match="bad.json: line 2: not a saved vocabulary"):
        Vocabulary.load(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError, match="no vocabulary at"):
        Vocabulary.load(tmp_path / "missing.json")


def test_tokenizer_adapter(tokenizer_dir):
    vocab = Vocabulary.load(tokenizer_dir)
    assert isinstance(vocab, TokenizerVocabulary) and len(vocab) == 11
    assert (vocab.pad_id, vocab.bos_id, vocab.eos_id, vocab.unk_id) == (0, 1, 2, 3)
    ids = vocab.encode("hello there .")
    assert ids == [5, 6, 7] and vocab.decode(ids + [2]) == "hello there ."
    assert vocab.id_to_token(8) == "bye" and vocab.token_to_id("you") == 10
    with pytest.raises(KeyError, match="'zebra' is not in the tokenizer"):
        vocab.token_to_id("zebra")
    vocab.save(tokenizer_dir.parent / "copy")
    assert Vocabulary.load(tokenizer_dir.parent / "copy").encode("bye") == [8]


def test_tokenizer_adapter_rejects_non_tokenizers():
    with pytest.raises(TypeError, match="not a transformers tokenizer"):
        TokenizerVocabulary(object())


def test_incremental_decoder_of_a_word_tokenizer_equals_full_decode(tokenizer_dir):
    vocab = TokenizerVocabulary(tokenizer_dir)
    rng = np.random.default_rng(0)
    for _ in range(50):
        ids = rng.integers(len(vocab), size=int(rng.integers(1, 40))).tolist()
        decoder = vocab.incremental_decoder()
        for n, token in enumerate(ids, 1):
            assert decoder.append(token) == vocab.decode(ids[:n])


@pytest.mark.parametrize("name", ["byte_level", "word_piece"])
@settings(max_examples=60, deadline=None)
@given(ids=st.lists(st.integers(0, 299), max_size=60))
def test_incremental_decoder_of_a_subword_tokenizer_equals_full_decode(subword_tokenizers, name, ids):
    tokenizer = subword_tokenizers[name]
    vocab = TokenizerVocabulary(tokenizer)
    ids = [i % len(vocab) for i in ids]
    decoder = vocab.incremental_decoder()
    for n, token in enumerate(ids, 1):
        assert decoder.append(token) == tokenizer.decode(ids[:n], skip_special_tokens=True)
    decoder.reset()
    assert decoder.text == "" and decoder.append(ids[0] if ids else 0) == vocab.decode(ids[:1] or [0])


@pytest.mark.parametrize("clean_up", [False, True])
@settings(max_examples=60, deadline=None)
@given(ids=st.lists(st.integers(0, 299), max_size=30))
def test_decode_is_the_tokenizers(subword_tokenizers, clean_up, ids):
    """TokenizerVocabulary.decode calls a fast tokenizer's backend itself, when that is all
    that tokenizer.decode would do."""
    for tokenizer in subword_tokenizers.values():
        vocab = TokenizerVocabulary(tokenizer)
        assert vocab._backend is tokenizer.backend_tokenizer
        ids = [i % len(vocab) for i in ids]
        tokenizer.clean_up_tokenization_spaces, before = clean_up, tokenizer.clean_up_tokenization_spaces
        try:
            assert vocab.decode(np.array(ids, dtype=np.int64)) == tokenizer.decode(ids, skip_special_tokens=True)
        finally:
            tokenizer.clean_up_tokenization_spaces = before


@given(ids=st.lists(st.integers(0, 9), max_size=30))
def test_incremental_decoder_of_a_word_vocabulary_equals_full_decode(ids):
    vocab = WordVocabulary(SPECIAL_TOKENS + tuple("abcdef"))
    decoder = vocab.incremental_decoder()
    for n, token in enumerate(ids, 1):
        assert decoder.append(token) == vocab.decode(ids[:n])

