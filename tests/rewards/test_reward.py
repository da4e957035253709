import pytest

from textgym.rewards import EpisodeReward, EvaluateMetric, Reward, make_reward

REFS = ["a b c"]


def test_names_callables_and_weights():
    def first_word(prediction, references, source):
        return float(prediction.split()[:1] == references[0].split()[:1])

    reward = make_reward([("exact_match", 0.25), first_word, {"metric": "length", "target": 2, "weight": 0.5}])
    value, metrics = reward("a x", REFS, "src")
    assert metrics == {"exact_match": 0.0, "first_word": 1.0, "length": 1.0}
    # weights are relative: 0.25, 1 and 0.5 pay their share of 1.75
    assert value == pytest.approx((0.25 * 0 + 1.0 * 1 + 0.5 * 1) / 1.75)
    assert make_reward({"token_f1": 0.5, "exact_match": 0.5}).names == ["token_f1", "exact_match"]
    assert make_reward(("bleu", 5)).terms[0][2] == 1.0
    assert make_reward(("bleu", 5))("a b c", REFS) == (1.0, {"bleu": 1.0})
    assert make_reward(reward) is reward


def test_weights_are_normalised_and_zero_weights_report_without_paying():
    reward = make_reward([("token_accuracy", 3), ("exact_match", 1), ("token_f1", 0)])
    assert [w for _, _, w in reward.terms] == [0.75, 0.25, 0.0]
    value, metrics = reward("a b x", REFS)
    assert value == pytest.approx(0.75 * 2 / 3) and metrics["token_f1"] == pytest.approx(2 / 3)


def test_check_calls_user_metrics_once_and_trusts_built_ins():
    calls = []
    reward = make_reward(["bleu", lambda p, r, s: calls.append(p) or 0.5])
    reward.check("a b", REFS, "src")
    assert calls == ["a b"]
    message = r"reward='<lambda>': <lambda>\(prediction, references, source\) on the first example returned None"
    with pytest.raises(TypeError, match=message):
        make_reward(lambda p, r, s: None).check("a", REFS, "", argument="reward")


def test_callable_gets_prediction_references_and_source():
    seen = []
    make_reward(lambda p, r, s: seen.append((p, r, s)) or 0.5)("x", REFS, "src")
    assert seen == [("x", REFS, "src")]


@pytest.mark.parametrize(
    "spec, error, message",
    [
        ("bleuu", ValueError, "unknown reward metric 'bleuu'; valid metrics: \\['bleu', 'chrf'"),
        ({"weight": 1}, ValueError, "unknown reward metric 'weight'"),
        ([{"metric": "length", "targte": 3}], ValueError, "bad arguments \\{'targte': 3\\} for metric 'length'"),
        ([("bleu", float("nan"))], ValueError, "reward weight must be a finite number"),
        ([], ValueError, "a reward needs at least one metric"),
        (["bleu", "bleu"], ValueError, "duplicate metric names"),
        (42, TypeError, "a reward metric is a name or a callable"),
    ],
)
def test_bad_specs(spec, error, message):
    with pytest.raises(error, match=message):
        make_reward(spec)


def test_non_finite_metric_value_is_an_error():
    with pytest.raises(ValueError, match="metric '<lambda>' returned nan"):
        make_reward(lambda p, r, s: float("nan"))("x", REFS, "")


def test_sparse_pays_only_at_the_end_and_dense_pays_differences():
    texts = ["a", "a b", "a x c", "a b c"]
    for mode in ("sparse", "dense"):
        episode = EpisodeReward(make_reward("token_accuracy"), mode)
        episode.reset(REFS, "src")
        rewards = [episode.step(text, done=i == len(texts) - 1) for i, text in enumerate(texts)]
        if mode == "sparse":
            assert rewards == [0.0, 0.0, 0.0, 1.0]
        else:
            assert rewards == pytest.approx([1 / 3, 1 / 3, 0.0, 1 / 3])
        assert episode.metrics == {"token_accuracy": 1.0}


METRIC_SCRIPT = '''
import datasets
import evaluate


class WordOverlap(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="fraction of prediction words found in the first reference",
            citation="", inputs_description="",
            features=datasets.Features({
                "predictions": datasets.Value("string"),
                "references": datasets.Sequence(datasets.Value("string")),
            }),
        )

    def _compute(self, predictions, references):
        words = predictions[0].split()
        ref = set(references[0][0].split())
        return {"overlap": sum(w in ref for w in words) / max(len(words), 1)}
'''


def test_evaluate_module_from_a_local_script(tmp_path):
    pytest.importorskip("evaluate")
    script = tmp_path / "word_overlap" / "word_overlap.py"
    script.parent.mkdir()
    script.write_text(METRIC_SCRIPT)
    metric = EvaluateMetric(str(script))
    assert metric("a b z", REFS) == pytest.approx(2 / 3)
    reward = Reward([("overlap", metric, 1.0)])
    assert reward("a", REFS)[0] == 1.0


def test_evaluate_adapter_rejects_objects_without_compute():
    with pytest.raises(TypeError, match="is not an evaluate module"):
        EvaluateMetric(object())


def test_numpy_numbers_are_weights_and_targets():
    import numpy as np

    reward = make_reward([("bleu", np.float32(3)), ("exact_match", np.int64(1)), {"metric": "length", "target": np.int64(3)}])
    assert [w for _, _, w in reward.terms] == [0.6, 0.2, 0.2]
    assert reward("a b c", REFS)[1]["length"] == 1.0
