"""CommonGen end to end: rows with concepts, held-out concept sets, TokenGen's end metrics."""

import json
from collections import Counter

import gymnasium as gym
import pytest

import textgym  # noqa: F401  (registers the ids)
from textgym.tasks import Task, TextExample, concept_set, load_task, split_concept_sets

# CommonGen's format; rows 0 and 3 are one concept set in two orders
ROWS = [
    {"concepts": ["dog", "frisbee", "catch", "throw"], "prompt": "dog frisbee catch throw",
     "references": ["a man throws a frisbee and the dog catches it .", "the dog caught the frisbee ."]},
    {"concepts": ["ski", "mountain", "skier"], "prompt": "ski mountain skier", "references": ["a skier skis down the mountain ."]},
    {"concepts": ["tree", "leaf", "fall"], "prompt": "tree leaf fall", "references": ["leaves fall from the tree ."]},
    {"concepts": ["catch", "dog", "frisbee", "throw"], "prompt": "catch dog frisbee throw",
     "references": ["the boy threw the frisbee for his dog to catch ."]},
    {"concepts": ["child", "run", "park"], "prompt": "child run park", "references": ["children run in the park ."]},
    {"concepts": ["cat", "sit", "mat"], "prompt": "cat sit mat", "references": ["the cat sat on the mat ."]},
    {"concepts": ["knife", "cut", "bread"], "prompt": "knife cut bread", "references": ["she cuts the bread with a knife ."]},
    {"concepts": ["horse", "ride", "field"], "prompt": "horse ride field", "references": ["a girl rides a horse across the field ."]},
    {"concepts": ["boat", "lake", "sail"], "prompt": "boat lake sail", "references": ["boats sail on the lake ."]},
]
N_SETS = 8


@pytest.fixture
def commongen(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    return path


def test_loader_keeps_concepts(commongen):
    task = load_task(commongen)
    examples = task.split("train")
    assert examples[0] == TextExample("dog frisbee catch throw", tuple(ROWS[0]["references"]), ("dog", "frisbee", "catch", "throw"))
    assert [e.concepts for e in examples] == [tuple(row["concepts"]) for row in ROWS]
    assert concept_set(examples[0]) == concept_set(examples[3]) == ("catch", "dog", "frisbee", "throw")
    # Hugging Face's common_gen rows have concepts and a target, no prompt: the concepts make it
    hf_row = load_task([{"concepts": ["ski", "mountain"], "target": "skiing down a mountain"}]).split("train")[0]
    assert hf_row == TextExample("ski mountain", ("skiing down a mountain",), ("ski", "mountain"))
    assert TextExample("p", ("r",)).concepts == ()


def test_commongen_dev_and_test_files_load_as_splits(commongen, tmp_path):
    dev = tmp_path / "dev.jsonl"
    dev.write_text(json.dumps(ROWS[5]) + "\n")
    task = load_task({"train": str(commongen), "dev": str(dev)})
    assert task.split("validation")[0].concepts == ("cat", "sit", "mat")
    assert len(task.split("train")) == len(ROWS)


@pytest.mark.parametrize("concepts, shown", [
    ('"dog"', "got 'dog'"), ("[]", "got \\[\\]"), ('["dog", 3]', "got \\['dog', 3\\]"), ('["dog", " "]', "got \\['dog', ' '\\]"),
])
def test_malformed_concepts_name_file_and_line(tmp_path, concepts, shown):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + f'{{"concepts": {concepts}, "prompt": "p", "references": ["r"]}}\n')
    with pytest.raises(ValueError, match=f"bad.jsonl:2: 'concepts' must be a non-empty list of non-blank str, ({shown})"):
        load_task(path)


def test_validation_concept_sets_never_occur_in_train(commongen):
    task = load_task(commongen, {"validation": 0.25, "seed": 0})
    train, validation = task.split("train"), task.split("validation")
    assert set(task.splits) == {"train", "validation"}
    assert not {concept_set(e) for e in train} & {concept_set(e) for e in validation}
    assert len({concept_set(e) for e in validation}) == round(0.25 * N_SETS)
    # every row once, each side in file order; the two rows of one set on one side
    everything = list(load_task(commongen).examples())
    assert Counter(train) + Counter(validation) == Counter(everything)
    assert [e for e in everything if e in train] == train and [e for e in everything if e in validation] == validation
    assert (everything[0] in train) == (everything[3] in train)


def test_split_is_deterministic_per_seed(commongen):
    def held_out(**kwargs):
        return [e.prompt for e in load_task(commongen, kwargs).split("validation")]

    assert held_out(validation=0.25, seed=3) == held_out(validation=0.25, seed=3)
    assert held_out(validation=0.25, seed=3) == held_out(validation=2, seed=3)  # a fraction of the 8 sets, or a count
    assert len({tuple(held_out(validation=2, seed=seed)) for seed in range(10)}) > 1
    assert held_out(validation=0.05) == held_out(validation=1, seed=0)  # at least one set


def test_split_through_gym_make(commongen):
    kwargs = {"task": str(commongen), "task_kwargs": {"validation": 2, "seed": 1}}
    env = gym.make("TokenGen-v0", split="validation", **kwargs)
    assert env.unwrapped.examples == load_task(commongen, kwargs["task_kwargs"]).split("validation")
    assert json.loads(env.spec.to_json())["kwargs"]["task_kwargs"] == {"validation": 2, "seed": 1}
    with pytest.raises(ValueError, match="has no 'test' split; it has \\['train', 'validation'\\]"):
        gym.make("TokenGen-v0", split="test", **kwargs)


@pytest.mark.parametrize("task_kwargs, message", [
    ({"validation": 0}, "validation=0 holds out 0 of 8 concept sets; hold out 1 to 7"),
    ({"validation": 8}, "validation=8 holds out 8 of 8 concept sets; hold out 1 to 7"),
    ({"validation": 1.0}, "validation must be a fraction in \\(0, 1\\) or an int >= 1, got 1.0"),
    ({"validation": True}, "validation must be a fraction in \\(0, 1\\) or a number of concept sets, got True"),
    ({"validation": 0.1, "seed": -1}, "seed must be an int >= 0, got -1"),
    ({"seed": 1}, "task_kwargs \\['seed'\\] need 'validation'"),
    ({"validation": 0.1, "length": 3}, "task_kwargs \\['length'\\] only apply to built-in tasks .*takes \\['validation', 'seed'\\]"),
])
def test_split_errors(commongen, task_kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_task(commongen, task_kwargs)


def test_split_needs_one_pool_of_two_sets(commongen):
    with pytest.raises(ValueError, match="already has its own splits \\['train', 'validation'\\]"):
        load_task({"train": str(commongen), "validation": str(commongen)}, {"validation": 0.1})
    with pytest.raises(ValueError, match="has 1 concept set; a validation split needs at least 2"):
        split_concept_sets(Task.single("one", [TextExample("a b", ("r",), ("a", "b"))]), 0.5)
    # rows without concepts are grouped by prompt
    rows = [{"prompt": p, "target": "t"} for p in ("x", "y", "x")]
    task = load_task(rows, {"validation": 1, "seed": 0})
    assert {e.prompt for e in task.split("validation")}.isdisjoint(e.prompt for e in task.split("train"))


def write(env, text):
    """Write ``text`` word by word, then EOS; the last step's result."""
    vocab = env.unwrapped.vocab
    for token in vocab.encode(text):
        env.step(token)
    return env.step(vocab.eos_id)


def test_token_gen_end_metrics_on_commongen(commongen):
    env = gym.make("TokenGen-v0", task=str(commongen), reward=["bleu", ("coverage", 0.5)])
    env.reset(seed=0, options={"index": 0})
    _, reward, terminated, _, info = write(env, "the dog caught the frisbee .")  # reference 2: no "throw"
    assert terminated
    assert info["metrics"] == {"bleu": 1.0, "coverage": 0.75, "rougeL": 1.0}
    assert reward == pytest.approx((1.0 + 0.5 * 0.75) / 1.5)
    # whatever the reward, a task with concepts reports BLEU-4, ROUGE-L and coverage
    env = gym.make("TokenGen-v0", task=str(commongen), reward="token_f1")
    env.reset(seed=0, options={"index": 5})
    info = write(env, "the cat sat on the mat .")[-1]
    assert info["metrics"] == {"token_f1": 1.0, "bleu": 1.0, "rougeL": 1.0, "coverage": 1.0}  # sat -> sit
    # tasks without concepts keep the reward's metrics only
    plain = [{"prompt": row["prompt"], "references": row["references"]} for row in ROWS]
    env = gym.make("TokenGen-v0", task=plain, reward="bleu")
    env.reset(seed=0, options={"index": 0})
    assert write(env, "the dog caught the frisbee .")[-1]["metrics"] == {"bleu": 1.0}


def test_coverage_reward_on_reference_free_concepts():
    rows = [{"concepts": ["dog", "frisbee", "catch", "throw"]}, {"concepts": ["cat", "mat"]}]
    env = gym.make("TokenGen-v0", task=rows, reward="coverage", max_new_tokens=4)
    env.reset(seed=0, options={"index": 0})
    _, reward, _, _, info = write(env, "dog frisbee")
    assert reward == 0.5 and info["metrics"] == {"coverage": 0.5}
    with pytest.raises(ValueError, match="need references.*reference-free rewards: \\['coverage', 'lm_fluency'"):
        gym.make("TokenGen-v0", task=rows, reward="bleu", max_new_tokens=4)


def test_real_commongen_split(shared_data):
    path = shared_data / "commongen" / "train.jsonl"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    task = load_task(path, {"validation": 0.05, "seed": 0})
    train, validation = task.split("train"), task.split("validation")
    assert not {concept_set(e) for e in train} & {concept_set(e) for e in validation}
    assert all(e.concepts and e.references for e in validation)
    assert 0.04 < len(validation) / (len(train) + len(validation)) < 0.06
