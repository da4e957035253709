"""The LM policy of :class:`agents.LMPPOAgent`: a transformers model (its trunk), the
action heads that its env's text view adds, and a value head. The frozen reference of
PPO's KL penalty is a copy of the whole policy, heads included; with LoRA adapters on the
trunk (``add_lora``) it is the same trunk with the adapters switched off, and frozen copies
of the heads."""

from __future__ import annotations

import copy
import hashlib
import os
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn


class LMPolicy(nn.Module):
    """``trunk``: a transformers model (a causal LM whose LM head scores TokenGen's tokens,
    or an encoder / decoder trunk whose hidden states a view's ``heads`` turn into action
    logits); ``value_head``: features -> V(s), zero at the start (None: a policy without a
    critic); ``value_trunk``: an own copy of the trunk for the value head
    (``value_model="separate"``), else None. ``tokenizer`` is the model's tokenizer (None when
    the env's vocabulary is the model's, as in TokenGen)."""

    def __init__(self, trunk: nn.Module, heads: nn.ModuleDict, feature_size: int, tokenizer: Any = None,
                 separate_value_trunk: bool = False, value_head: bool = True):
        super().__init__()
        self.trunk, self.heads = trunk, heads
        self.value_trunk = copy.deepcopy(trunk) if separate_value_trunk else None
        self.value_head = nn.Linear(feature_size, 1) if value_head else None
        if self.value_head is not None:
            nn.init.zeros_(self.value_head.weight)
            nn.init.zeros_(self.value_head.bias)
        self.feature_size, self.tokenizer = feature_size, tokenizer

    @property
    def device(self) -> torch.device:
        return self.trunk.device

    @property
    def lora(self) -> bool:
        """Whether the trunk trains through LoRA adapters (``add_lora``)."""
        return hasattr(self.trunk, "disable_adapter")

    def add_lora(self, r: int, alpha: float, dropout: float = 0.0, target_modules: str | Sequence[str] | None = None,
                 adapt_lm_head: bool = False) -> None:
        """Wrap the trunk in peft's LoRA adapters of rank ``r`` (scale ``alpha / r``) on
        ``target_modules``; the trunk's own weights freeze, and the adapters start as the
        identity, so the policy is unchanged. None: peft's default for the model type, plus
        the LM head if ``adapt_lm_head`` (TokenGen, whose actions the LM head scores: on small
        models most of what PPO changes is there, and attention adapters alone barely learn)."""
        try:
            from peft import LoraConfig, get_peft_model
        except ImportError:
            raise ImportError("LoRA (lora_r > 0) needs peft: pip install 'textgym[lora]'") from None
        if any(type(module).__module__.startswith("peft.") for module in self.trunk.modules()):
            raise ValueError("the model already carries peft adapters (an agent with lora_r wraps its model in place): "
                             "give a fresh copy of the base model")
        targets = list(target_modules) if isinstance(target_modules, (list, tuple)) else target_modules
        if targets is None and adapt_lm_head:
            targets = default_targets_with_lm_head(self.trunk)
        config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets)
        try:
            with warnings.catch_warnings():
                # peft sets fan_in_fan_out per layer (GPT-2 mixes Conv1D and Linear), merge_lora
                # unties a tied LM head before folding its adapter in, and peft 0.21 still asks
                # transformers 5 the deprecated is_gradient_checkpointing
                warnings.filterwarnings("ignore", message="fan_in_fan_out is set to", category=UserWarning)
                warnings.filterwarnings("ignore", message=".*a tied layer is part of the adapter", category=UserWarning)
                warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
                self.trunk = get_peft_model(self.trunk, config)
        except ValueError as error:  # no such modules, or no default for the model type
            names = sorted({name.rsplit(".", 1)[-1] for name, module in self.trunk.named_modules()
                            if isinstance(module, nn.Linear) or type(module).__name__ == "Conv1D"})
            raise ValueError(f"lora_target_modules={target_modules!r} does not fit the {type(self.trunk).__name__} trunk "
                             f"({str(error).splitlines()[0]}); its linear layers: {names}") from None

    @torch.no_grad()
    def merge_lora(self) -> dict[str, torch.Tensor]:
        """Fold the adapters into the trunk's weights and restart them at the identity (in
        place, so an optimizer keeps its parameters); returns the adapters' weights as they
        were, which ``merge_lora`` after loading them folds in again."""
        from peft.tuners.lora import LoraLayer

        adapters = {name: p.detach().clone() for name, p in trained_weights(self.trunk).items()}
        for layer in self.trunk.modules():
            if isinstance(layer, LoraLayer):
                base = layer.get_base_layer()
                for name in layer.active_adapters:
                    delta = layer.get_delta_weight(name)
                    if base.weight is self.trunk.get_input_embeddings().weight and delta.any():
                        self._untie_lm_head(base)
                    base.weight += delta.to(base.weight.dtype)
                    layer.reset_lora_parameters(name, True)
        return adapters

    def _untie_lm_head(self, lm_head: nn.Module) -> None:
        """Give an LM head tied to the input embeddings its own weights, so that folding its
        adapter in changes the action scores and leaves the token embeddings alone."""
        lm_head.weight = nn.Parameter(lm_head.weight.detach().clone(), requires_grad=False)
        self.trunk.config.tie_word_embeddings = False  # so that no later tie_weights() ties them again

    def base(self) -> LMPolicy:
        """The reference of a LoRA policy: its trunk with the adapters off (the same weights,
        not a copy) and frozen copies of its heads."""
        if not self.lora:
            raise ValueError("base() is the reference of a LoRA policy; this policy has no adapters (use frozen())")
        heads = copy.deepcopy(self.heads).requires_grad_(False)
        return LMPolicy(AdaptersOff(self.trunk), heads, self.feature_size, self.tokenizer, value_head=False).eval()

    def frozen(self, device: torch.device | None = None, dtype: torch.dtype | None = None) -> LMPolicy:
        """A copy that does not learn (the reference, or a lagged mask model)."""
        copied = copy.deepcopy(self, memo={id(self.tokenizer): self.tokenizer})
        copied.value_trunk = None  # a frozen copy scores actions; it never needs a critic
        copied = copied.to(device or self.device, dtype).eval()
        copied.requires_grad_(False)
        return copied

    def modules_to_save(self) -> dict[str, nn.Module]:
        """What a checkpoint holds: the trunk (of a LoRA policy only its ``adapters``, the
        trained weights), the heads, and the critic if any."""
        modules = {"adapters": trained_weights(self.trunk)} if self.lora else {"trunk": self.trunk}
        modules["heads"] = self.heads
        if self.value_head is not None:
            modules["value_head"] = self.value_head
        if self.value_trunk is not None:
            modules["value_trunk"] = self.value_trunk
        return modules


def default_targets_with_lm_head(model: nn.Module) -> list[str] | None:
    """peft's default LoRA targets for ``model``'s type and the name of its LM head (None:
    peft has no default for the type, and says so)."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS

    defaults = DEFAULTS.get(model.config.model_type)
    if defaults is None:
        return None
    lm_head = model.get_output_embeddings()
    return [*defaults, next(name for name, module in model.named_modules() if module is lm_head)]


class AdaptersOff(nn.Module):
    """A peft model seen with its adapters disabled: the base model, same weights. The peft
    model is not a submodule, so that freezing or moving this view leaves the policy alone."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.__dict__["model"] = model

    @property
    def config(self) -> Any:
        return self.model.config

    @property
    def device(self) -> torch.device:
        return self.model.device

    def get_input_embeddings(self) -> nn.Module:
        return self.model.get_input_embeddings()

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        with self.model.disable_adapter():
            return self.model(*args, **kwargs)


def trained_weights(model: nn.Module) -> nn.ParameterDict:
    """The parameters of ``model`` that train (a LoRA trunk's adapters), as a module that
    shares them: loading its state dict writes into ``model``."""
    return nn.ParameterDict({name.replace(".", "/"): p for name, p in model.named_parameters() if p.requires_grad})


def weights_fingerprint(model: nn.Module) -> str:
    """A SHA-256 of each weight's name, shape, dtype and first and last values: tells base
    models apart without hashing every weight."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        flat = tensor.detach().reshape(-1)
        ends = torch.cat([flat[:8], flat[-8:]]).cpu().contiguous()
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(ends.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def build_policy(env: Any, model: Any = None, tokenizer: Any = None, separate_value_trunk: bool = False,
                 value_head: bool = True) -> tuple[Any, LMPolicy]:
    """The text view of ``env`` and a policy over it (with a value head, or without).

    ``model``: None (an offline tiny model: a GPT-2 over TokenGen's vocabulary, else a BERT
    with a word-piece tokenizer trained on the task's text), a shortcut (``"minilm"``,
    ``"smollm2"``) or local transformers directory, or a model object (then give its
    ``tokenizer`` too, except on TokenGen, whose env vocabulary is the model's)."""
    from agents.lm import is_causal, load_causal_lm, load_text_model, tiny_causal_lm, tiny_text_model, word_piece_tokenizer
    from agents.text_views import TokenGenView, text_view, view_class

    # an env that no view reads fails here, before a tokenizer is trained on its text
    view = text_view(env) if view_class(env) is TokenGenView else None
    if view is not None:  # TokenGen: the causal LM's own head scores the env's tokens
        if model is None:
            model = tiny_causal_lm(env.unwrapped.vocab)
        elif isinstance(model, (str, os.PathLike)):
            model, _ = load_causal_lm(model)
        if not hasattr(model, "get_output_embeddings") or model.get_output_embeddings() is None:
            raise ValueError(f"TokenGen needs a causal LM with an LM head (AutoModelForCausalLM), got {type(model).__name__}")
        assert isinstance(view, TokenGenView)
        view.check_model(model)
        trunk = model
    else:
        if model is None:
            tokenizer = tokenizer if tokenizer is not None else word_piece_tokenizer(task_texts(env))
            trunk = tiny_text_model(tokenizer)
        elif isinstance(model, (str, os.PathLike)):
            trunk, loaded = load_text_model(model)
            tokenizer = tokenizer if tokenizer is not None else loaded
        else:
            if tokenizer is None:
                raise ValueError("a model object needs its tokenizer too: LMPPOAgent(env, model=model, tokenizer=tokenizer)")
            trunk = model.base_model  # hidden states: an LM head, if any, is not used
        if getattr(trunk, "pooler", None) is not None:
            # the views read hidden states, never BERT's pooler: dropping it keeps it out of the
            # checkpoint, so that load's model from config (pooler or not) matches what was saved
            trunk.pooler = None
        view = text_view(env, tokenizer, causal=is_causal(trunk))
    heads = view.heads(trunk)
    policy = LMPolicy(trunk, heads, view.feature_size, None if view.needs_lm_head else tokenizer, separate_value_trunk,
                      value_head)
    return view, policy


def task_texts(env: Any) -> list[str]:
    """Every prompt and reference of the env's task: what a tiny model's tokenizer learns from."""
    return [text for example in env.unwrapped.task.examples()
            for text in (example.prompt, *getattr(example, "references", ()))]
