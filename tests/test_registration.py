import subprocess
import sys

import gymnasium as gym

import textgym
from envs_registry import ENVS, register_envs


def test_make_with_module_prefix_in_a_fresh_interpreter():
    code = "import gymnasium as gym; env = gym.make('textgym:TokenGen-v0'); print(env.spec.id, env.action_space)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "TokenGen-v0 Discrete(9)"


def test_register_envs_is_idempotent():
    before = {env_id: gym.spec(env_id) for env_id in ENVS}
    register_envs()
    textgym.register_envs()
    assert all(gym.spec(env_id) is spec for env_id, spec in before.items())


def test_registry_kwargs_are_json_serialisable():
    for env_id in ENVS:
        gym.spec(env_id).to_json()
