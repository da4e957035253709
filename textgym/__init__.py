"""textgym: Gymnasium environments that turn text tasks into MDPs.

Importing textgym registers every env id (``TokenGen-v0``, ...), so ``gym.make`` works.
"""

from envs_registry import ENVS, register_envs
from textgym.tasks import Task, TextExample, load_task
from textgym.vocab import TokenizerVocabulary, Vocabulary, WordVocabulary

__version__ = "0.1.0"

register_envs()

__all__ = [
    "ENVS", "Task", "TextExample", "TokenizerVocabulary", "Vocabulary", "WordVocabulary",
    "load_task", "register_envs", "__version__",
]
