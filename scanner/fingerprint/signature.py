"""Per-model statistical signatures: what a model's outputs have in common, stored compactly as data.

Embedding models are anisotropic: their outputs share a common direction (a random vector is almost
orthogonal to it, cosine ~ N(0, 1/sqrt(d))), and with enough samples they also concentrate in a few
principal directions. A signature keeps:

* ``mean``: the mean of the model's unit-normalised outputs (its prefix serves truncated outputs);
* ``components``: principal directions of the residual (only when the sample is large enough to
  estimate them; zero rows otherwise);
* per prefix size in ``grid``: the *held-out* distribution of the cosine to the mean (``c_mu``,
  ``c_sd``) and of the energy in the residual components (``e_mu``, ``e_sd``), so scoring compares a
  new vector against what unseen outputs of that model looked like, not against the sample itself;
* how many vectors it rests on (``n``) and how the held-out numbers were obtained (``heldout``);
* for a large sample of a small model (the local MiniLM, thousands of texts of many styles): a
  *density* check, the quadratic form ``x^T M^-1 x`` with ``M`` the model's second-moment matrix shrunk
  towards isotropy. A random unit vector spreads its energy evenly over all directions, an output of
  the model puts it where the model's variance is, whatever the text's style: short queries that are
  nearly orthogonal to the mean direction still score far from random. Stored per size (the native
  one and grid prefixes from ``MIN_DENSITY_PREFIX`` up, since truncated outputs leak too) as a
  whitening basis and the score's null (random unit vectors) and held-out model spread.

numpy only: the scorer loads these on the hot path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

GRID = (32, 64, 128, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096)
MIN_PREFIX = 32
# With fewer samples than this the residual components are noise; only the mean is kept.
MIN_FOR_COMPONENTS = 40
MAX_COMPONENTS = 64
# Prior guess of the held-out cosine to the mean when one vector is all we have (typical of the
# models we could measure: 0.2-0.9); deliberately wide.
SINGLE_C_MU, SINGLE_C_SD = 0.3, 0.15
C_SD_FLOOR = 0.03
# The density check needs a well-estimated (dim x dim) second-moment matrix: many samples, small dim.
MIN_FOR_DENSITY = 1000
MAX_DENSITY_DIM = 1024
MIN_DENSITY_PREFIX = 128  # below this a prefix holds too little of the model's structure to be worth it
# Shrinkage towards isotropy: the reference texts do not cover every style, so directions where the
# sample shows almost no variance must not make an unseen style look impossible (measured: 0.2 keeps
# short queries and tickets well apart from random vectors; 0.5 and 0.02 both separate less).
QUAD_SHRINK = 0.2
QUAD_NULL_SAMPLES = 20000
QUAD_NULL_SEED = 20261126


@dataclass(frozen=True)
class Signature:
    model: str
    dim: int
    n: int
    heldout: str  # "split", "loo" or "none" (n == 1: nothing held out, the numbers are priors)
    mean: np.ndarray  # (dim,)
    components: np.ndarray  # (k, dim), k may be 0
    grid: np.ndarray  # (g,) prefix sizes with stats, ascending, last == dim
    c_mu: np.ndarray
    c_sd: np.ndarray
    e_mu: np.ndarray
    e_sd: np.ndarray
    norm_mu: float
    norm_sd: float
    fp16_share: float
    sources: tuple[str, ...] = ()
    # Density check per size (empty when the sample is too small): size -> (W, stats). For a unit x of
    # that size q = -||x @ W||^2, scored as z = (q - null_mu) / null_sd; stats = (null_mu, null_sd,
    # model median z, model spread of z), the model's numbers measured on held-out vectors.
    density: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def has_density(self) -> bool:
        return bool(self.density)

    def density_at(self, d: int) -> tuple[np.ndarray, np.ndarray] | None:
        return self.density.get(d)

    def stats_at(self, d: int) -> tuple[float, float, float, float]:
        """Held-out (c_mu, c_sd, e_mu, e_sd) at prefix size ``d``, interpolated in log-size."""
        x = np.log(self.grid.astype(np.float64))
        t = np.log(float(d))
        return tuple(float(np.interp(t, x, arr)) for arr in (self.c_mu, self.c_sd, self.e_mu, self.e_sd))  # type: ignore[return-value]

    def basis_at(self, d: int) -> tuple[np.ndarray, np.ndarray]:
        """Unit mean direction of the ``d``-prefix, and an orthonormal residual basis (d, k)."""
        return _basis(self.mean[:d], self.components[:, :d])


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms == 0, 1, norms)


def _basis(mean: np.ndarray, components: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = mean.astype(np.float64)
    direction = mean / (np.linalg.norm(mean) or 1.0)
    if components.shape[0] == 0:
        return direction, np.zeros((mean.shape[0], 0))
    stacked = np.vstack([direction, components.astype(np.float64)]).T
    q, r = np.linalg.qr(stacked)
    keep = np.abs(np.diag(r))[1:] > 1e-6
    return direction, q[:, 1:][:, keep]


def _fit(train: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    mean = train.mean(axis=0)
    if k == 0:
        return mean, np.zeros((0, train.shape[1]))
    direction = mean / np.linalg.norm(mean)
    resid = train - np.outer(train @ direction, direction)
    resid = resid - resid.mean(axis=0)
    _, _, vt = np.linalg.svd(resid, full_matrices=False)
    return mean, vt[:k]


def _features(x: np.ndarray, direction: np.ndarray, resid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = _unit_rows(x)
    c = x @ direction
    e = ((x @ resid) ** 2).sum(axis=1) if resid.shape[1] else np.zeros(len(x))
    return c, e


def build_signature(model: str, vectors: np.ndarray, sources: tuple[str, ...] = ()) -> Signature:
    """Build a signature from raw model outputs (n, dim), with held-out statistics.

    n >= MIN_FOR_COMPONENTS: the first 3/4 build the mean and components, the last 1/4 give the stats.
    2 <= n: leave-one-out cosine to the mean of the others (no components).
    n == 1: the vector is the mean, the stats are the wide priors above (nothing could be held out).
    """
    raw = np.asarray(vectors, dtype=np.float64)
    if raw.ndim != 2 or raw.shape[0] == 0:
        raise ValueError("vectors must be a non-empty (n, dim) matrix")
    n, dim = raw.shape
    norms = np.linalg.norm(raw, axis=1)
    unit = _unit_rows(raw)
    as32 = raw.astype(np.float32)
    fp16 = float(np.mean(np.all(as32.astype(np.float16).astype(np.float32) == as32, axis=1)))
    grid = np.array(sorted({g for g in GRID if MIN_PREFIX <= g < dim} | {dim}), dtype=np.int64)
    c_mu, c_sd, e_mu, e_sd = (np.zeros(len(grid)) for _ in range(4))
    if n >= MIN_FOR_COMPONENTS:
        heldout = "split"
        cut = (3 * n) // 4
        k = min(MAX_COMPONENTS, cut // 4, dim // 4)
        mean, comps = _fit(unit[:cut], k)
        for i, d in enumerate(grid):
            direction, resid = _basis(mean[:d], comps[:, :d])
            c, e = _features(unit[cut:, :d], direction, resid)
            c_mu[i], c_sd[i], e_mu[i], e_sd[i] = c.mean(), c.std(ddof=1), e.mean(), e.std(ddof=1)
    elif n >= 2:
        heldout = "loo"
        mean, comps = unit.mean(axis=0), np.zeros((0, dim))
        for i, d in enumerate(grid):
            cs = []
            for j in range(n):
                others = np.delete(unit[:, :d], j, axis=0).mean(axis=0)
                others /= np.linalg.norm(others)
                cs.append(float(unit[j, :d] @ others / np.linalg.norm(unit[j, :d])))
            c_mu[i] = np.mean(cs)
            # few samples: widen the spread so one lucky pair does not make the model look tighter than it is
            spread = np.std(cs, ddof=1) if n > 2 else 0.0
            # (two similar documents give a high, tight LOO cosine that unrelated texts will not reach)
            c_sd[i] = np.sqrt(spread**2 + _small_sample_sd(n) ** 2)
    else:
        heldout = "none"
        mean, comps = unit[0], np.zeros((0, dim))
        c_mu[:], c_sd[:] = SINGLE_C_MU, SINGLE_C_SD
    c_sd = np.maximum(c_sd, C_SD_FLOOR)
    e_sd = np.maximum(e_sd, 1e-3)
    density: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    if n >= MIN_FOR_DENSITY and dim <= MAX_DENSITY_DIM:
        cut = (3 * n) // 4
        for d in grid:
            if d >= MIN_DENSITY_PREFIX or d == dim:
                density[int(d)] = _fit_density(_unit_rows(unit[:cut, :d]), _unit_rows(unit[cut:, :d]))
    return Signature(
        model=model,
        dim=dim,
        n=n,
        heldout=heldout,
        mean=mean.astype(np.float32),
        components=comps.astype(np.float32),
        grid=grid,
        c_mu=c_mu,
        c_sd=c_sd,
        e_mu=e_mu,
        e_sd=e_sd,
        norm_mu=float(norms.mean()),
        norm_sd=float(norms.std()),
        fp16_share=fp16,
        sources=tuple(sources),
        density=density,
    )


def density_score(x: np.ndarray, quad_w: np.ndarray) -> np.ndarray:
    """q = -||x W||^2 per row of unit vectors x: higher means more like the model's outputs."""
    y = x @ quad_w
    return -np.einsum("ij,ij->i", y, y, dtype=np.float64)


def _fit_density(train: np.ndarray, held: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Whitening basis of the shrunk second moment, the score's null, and its held-out spread.

    The null is simulated (random unit vectors, fixed seed) rather than derived, so that it is exact
    for float32 inputs. The model spread is read off the *lower* tail of the held-out scores (median
    minus 1st percentile over 2.33): what matters is how low unseen outputs can go, not how high.
    """
    dim = train.shape[1]
    second = train.T @ train / len(train)
    w, v = np.linalg.eigh(second)
    m = (1 - QUAD_SHRINK) * np.maximum(w, 0.0) + QUAD_SHRINK / dim
    # scaled so that a random unit vector scores about -1 (keeps float32 products well-conditioned)
    quad_w = (v / np.sqrt(m * np.mean(1.0 / m))).astype(np.float32)
    rng = np.random.default_rng(QUAD_NULL_SEED)
    null = _unit_rows(rng.standard_normal((QUAD_NULL_SAMPLES, dim))).astype(np.float32)
    q_null = density_score(null, quad_w)
    mu, sd = float(q_null.mean()), float(q_null.std(ddof=1))
    z = (density_score(held.astype(np.float32), quad_w) - mu) / sd
    median = float(np.median(z))
    spread = max((median - float(np.percentile(z, 1))) / 2.33, 1.0)
    return quad_w, np.array([mu, sd, median, spread])


def _small_sample_sd(n: int) -> float:
    """Extra spread for a leave-one-out estimate from n vectors (few, often similar, texts)."""
    return 0.25 if n < 4 else 0.12 if n < 8 else 0.05


def file_name(model: str) -> str:
    return model.replace("/", "__") + ".npz"


def save_signature(sig: Signature, directory: Path) -> Path:
    path = directory / file_name(sig.model)
    meta = {
        "model": sig.model,
        "dim": sig.dim,
        "n": sig.n,
        "heldout": sig.heldout,
        "sources": list(sig.sources),
        "norm_mu": sig.norm_mu,
        "norm_sd": sig.norm_sd,
        "fp16_share": sig.fp16_share,
        "version": 2 if sig.has_density else 1,
    }
    if sig.has_density:
        meta["density_sizes"] = sorted(sig.density)
    extra = {}
    for d, (w, stats) in sig.density.items():
        extra[f"quad_w_{d}"], extra[f"quad_stats_{d}"] = w, stats
    with path.open("wb") as fh:
        np.savez_compressed(
            fh,
            **extra,
            meta=np.array(json.dumps(meta)),
            mean=sig.mean,
            components=sig.components,
            grid=sig.grid,
            c_mu=sig.c_mu,
            c_sd=sig.c_sd,
            e_mu=sig.e_mu,
            e_sd=sig.e_sd,
        )
    return path


def load_signature(path: Path) -> Signature:
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        if meta.get("version") not in (1, 2):
            raise ValueError(f"{path}: unsupported signature version {meta.get('version')!r}")
        sig = Signature(
            model=meta["model"],
            dim=int(meta["dim"]),
            n=int(meta["n"]),
            heldout=meta["heldout"],
            mean=z["mean"],
            components=z["components"],
            grid=z["grid"],
            c_mu=z["c_mu"],
            c_sd=z["c_sd"],
            e_mu=z["e_mu"],
            e_sd=z["e_sd"],
            norm_mu=float(meta["norm_mu"]),
            norm_sd=float(meta["norm_sd"]),
            fp16_share=float(meta["fp16_share"]),
            sources=tuple(meta.get("sources", ())),
            density={int(d): (z[f"quad_w_{d}"], z[f"quad_stats_{d}"]) for d in meta.get("density_sizes", ())},
        )
    for d, (w, stats) in sig.density.items():
        if w.shape[0] != d or d > sig.dim or stats.shape != (4,):
            raise ValueError(f"{path}: density arrays for size {d} do not match")
    if sig.mean.shape != (sig.dim,) or sig.components.shape[1:] != (sig.dim,) or sig.grid[-1] != sig.dim:
        raise ValueError(f"{path}: signature arrays do not match dim {sig.dim}")
    return sig
