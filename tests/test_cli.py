import subprocess
import sys

import pytest


def run(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "textgym", *args], capture_output=True, text=True, timeout=timeout)


def test_list_names_envs_tasks_and_rewards():
    result = run("list")
    assert result.returncode == 0, result.stderr
    for name in ("TokenGen-v0", "keywords", "token_accuracy"):
        assert name in result.stdout


@pytest.mark.parametrize("env_id", ["TokenGen-Keywords-v0", "TokenEdit-Compress-v0", "NERTag-Entities-v0"])
def test_demo_trains_and_reports_scores(env_id):
    result = run("demo", "--env", env_id, "--steps", "256", "--eval-episodes", "5", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "random legal actions" in result.stdout and "after 256 steps" in result.stdout


def test_unknown_env_is_a_one_line_error():
    result = run("demo", "--env", "TokenGen-v9", "--no-progress")
    assert result.returncode == 2
    assert result.stderr.startswith("textgym demo: error:") and "v9" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_steps_is_rejected_by_the_parser():
    result = run("demo", "--steps", "-5")
    assert result.returncode == 2 and "must be a positive integer" in result.stderr
