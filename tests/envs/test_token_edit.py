import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import InvalidAction
from hypothesis import given, settings
from hypothesis import strategies as st

import textgym  # noqa: F401
from textgym.envs import TokenEditEnv
from textgym.envs.token_edit import edit_script, oracle_actions
from textgym.rewards import CompressionScore

ROWS = [{"source": "a b c d", "references": ["a c d"]}, {"source": "x y", "target": "y x z"}]


def make(**kwargs) -> TokenEditEnv:
    kwargs.setdefault("task", ROWS)
    return TokenEditEnv(**kwargs)


def act(env, op, token=None):
    return env.step(env.action_id(op, token))


def legal_ops(info, env):
    return {env.describe_action(a) for a in np.flatnonzero(info["action_mask"])}


def levenshtein(a, b):
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (x != y))
    return row[-1]


def replay(env, actions, info):
    """Step through actions (all must be legal) until the episode ends; returns the last step."""
    total = 0.0
    for action in actions:
        assert info["action_mask"][action], env.describe_action(action)
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
        if terminated or truncated:
            return total, terminated, truncated, info
    raise AssertionError("the actions did not end the episode")


def test_action_layout_and_round_trip():
    env = make()
    words = [env.vocab.id_to_token(int(i)) for i in env.candidates]
    assert sorted(words) == ["a", "b", "c", "d", "x", "y", "z"]  # every non-special token
    k = len(words)
    assert env.action_space == gym.spaces.Discrete(3 + 2 * k)
    assert [env.action_id(op) for op in ("keep", "delete", "stop")] == [0, 1, 2]
    assert env.action_id("replace", words[0]) == 3 and env.action_id("insert", words[0]) == 3 + k
    assert env.action_id("insert", int(env.candidates[2])) == env.action_id("insert", words[2]) == 5 + k
    for action in range(env.action_space.n):
        assert env.action_id(*env.describe_action(action)) == action
    assert env.describe_action(np.int64(3 + k)) == ("insert", words[0])


def test_observation_and_reset_info():
    env = make()
    obs, info = env.reset(options={"index": 0})
    assert env.max_length == 4 + 3 and env.max_steps == 2 * 7 + 1
    assert set(obs) == {"source_ids", "source_mask", "current_ids", "current_mask", "cursor", "edits"}
    assert all(v.dtype == np.int64 for v in obs.values())
    assert env.vocab.decode(obs["source_ids"]) == "a b c d" and obs["source_mask"].tolist() == [1, 1, 1, 1]
    assert obs["current_ids"].tolist() == env.vocab.encode("a b c d") + [env.vocab.pad_id] * 3
    assert obs["current_mask"].tolist() == [1, 1, 1, 1, 0, 0, 0] and obs["cursor"] == [0] and obs["edits"] == [0]
    assert info["text"] == "a b c d" and info["source"] == "a b c d"
    obs["current_ids"][0] = 99  # observations are copies
    assert env.tokens[0] != 99


def test_each_operation_changes_sequence_and_cursor_exactly():
    env = make()
    env.reset(options={"index": 0})
    vocab = env.vocab

    obs, reward, terminated, truncated, info = act(env, "keep")
    assert (env.text, env.cursor, env.edits_used) == ("a b c d", 1, 0)
    obs, *_, info = act(env, "delete")
    assert (info["text"], env.cursor, env.edits_used) == ("a c d", 1, 1)
    assert obs["current_mask"].tolist() == [1, 1, 1, 0, 0, 0, 0] and obs["current_ids"][3] == vocab.pad_id
    obs, *_, info = act(env, "replace", "x")
    assert (info["text"], env.cursor, env.edits_used) == ("a x d", 2, 2)
    obs, *_, info = act(env, "insert", "z")
    assert (info["text"], env.cursor, env.edits_used) == ("a x z d", 3, 3)
    assert obs["current_ids"][:4].tolist() == vocab.encode("a x z d") and obs["current_mask"].sum() == 4
    assert obs["cursor"] == [3] and obs["edits"] == [3]
    obs, *_, info = act(env, "keep")
    assert env.cursor == 4 and not info.get("metrics")
    _, *_, info = act(env, "insert", "y")  # at the end slot, insert appends
    assert info["text"] == "a x z d y" and env.cursor == 5
    _, reward, terminated, truncated, info = act(env, "stop")
    assert terminated and not truncated and info["text"] == "a x z d y"


def test_render_shows_the_cursor():
    env = make(render_mode="ansi")
    env.reset(options={"index": 0})
    assert "current: ▌a b c d" in env.render()
    act(env, "keep")
    act(env, "delete")
    assert "current: a ▌c d" in env.render() and "edits 1" in env.render()


def test_masks_at_the_boundaries():
    env = make(max_length=4)
    _, info = env.reset(options={"index": 0})
    ops = legal_ops(info, env)
    # a full text cannot grow, and replacing "a" with itself is a wasted edit
    assert not any(op == "insert" for op, _ in ops) and ("replace", "a") not in ops
    assert {("keep", None), ("delete", None), ("stop", None), ("replace", "b")} <= ops
    _, *_, info = act(env, "delete")
    assert ("insert", "z") in legal_ops(info, env)  # room again

    env = make()
    _, info = env.reset(options={"index": 1})
    act(env, "keep")
    *_, info = act(env, "keep")
    ops = legal_ops(info, env)  # cursor past the last token: only append or stop
    assert {op for op, _ in ops} == {"insert", "stop"}


def test_end_slot_terminates_when_nothing_can_be_appended():
    env = make(mode="compress")
    _, info = env.reset(options={"index": 1})
    assert env.action_space.n == 3 and legal_ops(info, env) == {("keep", None), ("delete", None), ("stop", None)}
    act(env, "keep")
    _, _, terminated, truncated, info = act(env, "delete")
    assert terminated and not truncated and info["text"] == "x"

    env = make(max_length=4)
    env.reset(options={"index": 0})
    for _ in range(3):
        act(env, "keep")
    _, _, terminated, *_ = act(env, "keep")
    assert terminated  # 4 tokens of max_length 4: nothing to append


@pytest.mark.parametrize("mode", ["edit", "compress"])
def test_stop_only_past_the_last_token_without_stop_anywhere(mode):
    env = make(mode=mode, stop_anywhere=False)
    _, info = env.reset(options={"index": 0})
    steps = 0
    while not info["action_mask"][env.action_id("stop")]:
        assert env.cursor < len(env.tokens)  # on a token: keep or delete it first
        _, _, terminated, truncated, info = act(env, "keep" if steps % 2 else "delete")
        steps += 1
        if terminated:
            break
    assert env.cursor == len(env.tokens) and steps == 4 and info["text"] == "b d"
    if mode == "compress":  # the last token's label ends the episode: no stop in compress mode
        assert terminated
    else:  # past the last token, stop or append
        assert not terminated and {op for op, _ in legal_ops(info, env)} == {"insert", "stop"}
    with pytest.raises(ValueError, match="stop_anywhere must be True or False, got 'no'"):
        make(stop_anywhere="no")


def test_edit_budget_truncates_and_masks_edits():
    env = make(max_edits=2)
    _, info = env.reset(options={"index": 0})
    assert env.observation_space["edits"].high.tolist() == [2]
    act(env, "delete")
    _, _, terminated, truncated, info = act(env, "replace", "z")
    assert truncated and not terminated and info["metrics"]["edits_used"] == 2.0
    assert legal_ops(info, env) == {("keep", None), ("stop", None)}


def test_masked_action_is_a_counted_no_op_and_max_steps_truncates():
    env = make(max_steps=3)
    _, info = env.reset(options={"index": 0})
    replace_a = env.action_id("replace", "a")
    assert not info["action_mask"][replace_a]
    obs, reward, terminated, truncated, info = env.step(replace_a)
    assert (env.text, env.cursor, env.edits_used, env.steps) == ("a b c d", 0, 0, 1)
    assert not (terminated or truncated)
    env.step(replace_a)
    _, _, terminated, truncated, info = env.step(replace_a)
    assert truncated and not terminated and info["text"] == "a b c d"


def test_default_max_steps_never_cuts_a_legal_episode():
    env = make()
    _, info = env.reset(options={"index": 1})
    # the longest legal episode: delete everything, then append until the text is full
    steps = 0
    done = False
    while not done:
        op = "delete" if env.tokens and env.cursor < len(env.tokens) else "insert"
        _, _, terminated, truncated, info = act(env, op, "z" if op == "insert" else None)
        steps += 1
        done = terminated or truncated
    assert terminated and not truncated and steps == 2 + env.max_length < env.max_steps


def test_end_metrics():
    env = make(compression={"ratio": 0.5})
    _, info = env.reset(options={"index": 0})
    act(env, "keep")
    act(env, "delete")
    _, reward, terminated, _, info = act(env, "stop")
    metrics = info["metrics"]
    assert set(metrics) == {"rouge1", "rouge2", "rougeL", "compression_ratio", "edits_used", "compression"}
    assert all(type(v) is float for v in metrics.values())
    assert metrics["rougeL"] == 1.0 and metrics["compression_ratio"] == 0.75 and metrics["edits_used"] == 1.0
    assert metrics["compression"] == pytest.approx(CompressionScore(ratio=0.5)("a c d", [], "a b c d"))
    # rougeL and the compression term (weight 1 each) share the reward equally
    assert reward == pytest.approx((1.0 + metrics["compression"]) / 2)


def test_compression_score_shapes():
    gaussian = CompressionScore(ratio=0.5, width=0.25)
    assert gaussian("a b", [], "a b c d") == 1.0
    assert gaussian("a b c", [], "a b c d") == pytest.approx(np.exp(-0.5))
    linear = CompressionScore(length=4, shape="linear", width=2)
    assert [linear(" ".join("w" * n), [], "") for n in (4, 3, 2, 1)] == [1.0, 0.5, 0.0, 0.0]


def test_rewards_combine_with_a_weighted_callable():
    def shortness(prediction, references, source):
        return 1.0 / (1 + len(prediction.split()))

    env = make(reward=["rouge1", (shortness, 0.5)])
    env.reset(options={"index": 0})
    _, reward, *_, info = act(env, "stop")
    assert reward == pytest.approx((info["metrics"]["rouge1"] + 0.5 / 5) / 1.5)
    assert info["metrics"]["shortness"] == pytest.approx(0.2)


@pytest.mark.parametrize("task, mode", [("compress", "compress"), ("compress", "edit"), ("fix", "edit")])
def test_oracle_scores_one_on_every_builtin_example(task, mode):
    for split in ("train", "validation", "test"):
        env = TokenEditEnv(task=task, split=split, mode=mode, reward_mode="dense")
        for index in range(len(env.examples)):
            _, info = env.reset(options={"index": index})
            target = env.vocab.encode(env.example.references[0])
            actions = oracle_actions(env.source_token_ids, target, env)
            total, terminated, truncated, info = replay(env, actions, info)
            assert terminated and info["text"] == env.example.references[0]
            assert total == pytest.approx(1.0) and info["metrics"]["rougeL"] == 1.0
            assert info["metrics"]["edits_used"] == levenshtein(env.source_token_ids, target)


WORDS = st.lists(st.sampled_from("abcde"), max_size=7)


@settings(max_examples=60, deadline=None)
@given(source=WORDS, target=WORDS.filter(bool), stop_anywhere=st.booleans())
def test_oracle_reaches_random_targets_with_a_minimal_script(source, target, stop_anywhere):
    env = make(task=[{"source": " ".join(source), "target": " ".join(target)}], stop_anywhere=stop_anywhere)
    _, info = env.reset(options={"index": 0})
    source_ids, target_ids = env.vocab.encode(" ".join(source)), env.vocab.encode(" ".join(target))
    script = edit_script(source_ids, target_ids)
    assert sum(op != "keep" for op, _ in script) == levenshtein(source, target)
    _, terminated, _, info = replay(env, oracle_actions(source_ids, target_ids, env), info)
    assert terminated and info["text"] == " ".join(target)
    metrics = info["metrics"]
    assert metrics["rouge1"] == metrics["rougeL"] == 1.0 and (metrics["rouge2"] == 1.0 or len(target) == 1)


@settings(max_examples=30, deadline=None)
@given(source=WORDS, keep=st.lists(st.booleans(), min_size=7, max_size=7), stop_anywhere=st.booleans())
def test_oracle_in_compress_mode_only_deletes(source, keep, stop_anywhere):
    target = [w for w, k in zip(source, keep) if k] or source[:1]
    if not target:
        return
    env = make(task=[{"source": " ".join(source), "target": " ".join(target)}], mode="compress", stop_anywhere=stop_anywhere)
    _, info = env.reset(options={"index": 0})
    actions = oracle_actions(env.source_token_ids, env.vocab.encode(" ".join(target)), env)
    assert {env.describe_action(a)[0] for a in actions} <= {"keep", "delete", "stop"}
    _, terminated, _, info = replay(env, actions, info)
    assert terminated and info["text"] == " ".join(target)


def test_oracle_needs_candidates():
    env = make(candidate_tokens=["a", "b"])
    env.reset(options={"index": 1})
    with pytest.raises(ValueError, match="token 'y' \\(id \\d+\\) is not one of the 2 candidate_tokens"):
        oracle_actions(env.source_token_ids, env.vocab.encode("y x z"), env)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"task": "compress"},
        {"task": "fix", "reward": ["rougeL", ("rouge2", 0.5)]},
        {"task": "compress", "mode": "compress", "compression": {"ratio": 0.6, "shape": "linear", "weight": 0.5}},
        {"task": "fix", "max_edits": 2, "reward": "bleu"},
    ],
)
@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10**6), picks=st.lists(st.integers(0, 10**6), max_size=20))
def test_dense_rewards_sum_to_the_sparse_reward(kwargs, seed, picks):
    returns = {}
    for mode in ("sparse", "dense"):
        env = TokenEditEnv(reward_mode=mode, **kwargs)
        _, info = env.reset(seed=seed)
        total, done, steps = 0.0, False, iter(picks)
        while not done:
            legal = np.flatnonzero(info["action_mask"])
            _, r, terminated, truncated, info = env.step(legal[next(steps, 0) % legal.size])
            total += r
            done = terminated or truncated
        returns[mode] = (total, info["metrics"], info["text"])
    assert returns["dense"][0] == pytest.approx(returns["sparse"][0], abs=1e-9)
    assert returns["dense"][1:] == returns["sparse"][1:]


def test_dense_reward_pays_the_change():
    env = make(reward="rouge1", reward_mode="dense")
    env.reset(options={"index": 0})
    _, first, *_ = act(env, "keep")
    assert first == pytest.approx(0.857142857)  # rouge1 F of the source "a b c d" against "a c d"
    _, second, *_ = act(env, "delete")
    assert second == pytest.approx(1.0 - first)
    _, third, *_ = act(env, "keep")
    assert third == 0.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"mode": "summarize"}, "unknown mode 'summarize'; valid modes: \\['edit', 'compress'\\]"),
        ({"candidate_tokens": ["a", "zebra"]}, "candidate_tokens: token 'zebra' is not in the vocabulary"),
        ({"candidate_tokens": [999]}, "candidate_tokens: token id 999 is outside the vocabulary"),
        ({"candidate_tokens": ["a", "a"]}, "candidate_tokens has duplicates"),
        ({"candidate_tokens": ["<pad>"]}, "candidate_tokens may not hold special tokens .* \\['<pad>'\\]"),
        ({"candidate_tokens": []}, "candidate_tokens is empty"),
        ({"candidate_tokens": "abc"}, "candidate_tokens must be a list of tokens"),
        ({"candidate_tokens": ["a"], "mode": "compress"}, "candidate_tokens only apply to mode='edit'"),
        ({"max_length": 3}, "max_length 3 is shorter than the longest source \\(4 tokens\\)"),
        ({"max_length": 0}, "max_length must be a positive int, got 0"),
        ({"max_edits": 0}, "max_edits must be None or a positive int, got 0"),
        ({"max_steps": "10"}, "max_steps must be a positive int, got '10'"),
        ({"reward": "rouge"}, "unknown reward metric 'rouge'; valid metrics: \\[.*'rougeL'"),
        ({"reward_mode": "dence"}, "unknown reward_mode 'dence'; valid modes: \\['sparse', 'dense'\\]"),
        ({"compression": 0.5}, "compression must be a dict such as \\{'ratio': 0.5\\}, got 0.5"),
        ({"compression": {"rate": 0.5}}, "unknown compression keys \\['rate'\\]; valid keys: \\['ratio', 'length'"),
        ({"compression": {"ratio": 0.5, "length": 3}}, "exactly one of 'ratio' or 'length'"),
        ({"compression": {"ratio": -1}}, "compression ratio must be a positive number, got -1"),
        ({"compression": {"length": 4, "shape": "box"}}, "unknown compression shape 'box'; valid shapes: \\['gaussian'"),
        ({"compression": {"ratio": 0.5, "weight": "1"}}, "compression weight must be a finite number, got '1'"),
        ({"task": "compress", "task_kwargs": {"n_removeable": 2}}, "unknown task_kwargs \\['n_removeable'\\] for task"),
    ],
)
def test_bad_configuration_fails_at_construction(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(**kwargs)


def test_bad_action_lookups():
    env = make(mode="compress")
    with pytest.raises(ValueError, match="unknown op 'swap'; valid ops: \\['keep', 'delete', 'replace', 'insert', 'stop'\\]"):
        env.action_id("swap")
    with pytest.raises(ValueError, match="mode='compress' has no 'insert' action; valid ops: \\['keep', 'delete', 'stop'\\]"):
        env.action_id("insert", "a")
    with pytest.raises(ValueError, match="op 'keep' takes no token, got 'a'"):
        env.action_id("keep", "a")
    with pytest.raises(ValueError, match="action 3 is not in the action space Discrete\\(3\\)"):
        env.describe_action(3)
    with pytest.raises(ValueError, match="op 'replace' needs a token"):
        make().action_id("replace")


def test_out_of_space_action_raises_through_gym_make():
    env = gym.make("TokenEdit-Compress-v0")
    env.reset(seed=0)
    with pytest.raises(InvalidAction, match="valid actions are integers 0..2"):
        env.step(3)


@pytest.mark.parametrize("action", [1, np.int32(1), np.uint8(1), np.array(1), np.array(1, dtype=np.int16)])
def test_integer_actions_in_every_form_that_discrete_contains_takes(action):
    env = make(task=[{"source": "a b", "target": "b"}], mode="compress")
    env.reset(seed=0)
    env.step(action)  # delete "a"
    assert env.tokens == [env.vocab.token_to_id("b")]


@pytest.mark.parametrize("action", [True, np.True_, np.array(True), 1.0, np.array([1]), "1", None, -1, 3, 2**70])
def test_non_actions_are_invalid(action):
    env = make(mode="compress")
    env.reset(seed=0)
    with pytest.raises(InvalidAction, match="is not in the action space Discrete\\(3\\): valid actions are integers 0..2"):
        env.step(action)


def test_tokenizer_vocabulary_with_candidates(tokenizer_dir):
    rows = [{"source": "hello hello there .", "target": "hello there ."}]
    env = TokenEditEnv(task=rows, vocab=str(tokenizer_dir), candidate_tokens=["hi", "bye"])
    assert env.action_space.n == 3 + 4
    _, info = env.reset(options={"index": 0})
    act(env, "delete")
    _, *_, info = act(env, "replace", "hi")
    assert info["text"].split() == ["hi", "there", "."]


@pytest.mark.parametrize("algo", ["PPO", "MaskablePPO"])
def test_sb3_algorithms_run_unchanged(algo):
    import sb3_contrib
    import stable_baselines3

    cls = getattr(stable_baselines3, algo, None) or getattr(sb3_contrib, algo)
    model = cls("MultiInputPolicy", gym.make("TokenEdit-v0"), seed=0, n_steps=32, batch_size=32)
    model.learn(64)  # PPO picks masked actions: they must be harmless no-ops
    env = gym.make("TokenEdit-v0")
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(int(action))
