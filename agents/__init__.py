"""textgym agents: they drive any textgym env through the plain reset()/step() loop."""

from agents.base import Agent, EpisodeLog, evaluate
from agents.dqn import DQNAgent
from agents.lm_ppo import LMPPOAgent
from agents.random_agent import RandomAgent
from agents.tabular_q import TabularQAgent

__all__ = ["Agent", "DQNAgent", "EpisodeLog", "LMPPOAgent", "RandomAgent", "TabularQAgent", "evaluate"]
