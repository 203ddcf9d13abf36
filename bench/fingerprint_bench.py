"""Fingerprinting benchmark: held-out confusion tables, random-vector false attributions, noise and
truncation robustness, and throughput. Prints Markdown for BENCHMARKS.md.

    HF_HUB_OFFLINE=1 python bench/fingerprint_bench.py [--fixtures DIR]

Held-out protocol: a fixture vector is scored by a fingerprinter whose signature for its own model was
rebuilt without it (leave-one-out; a model with one vector then has no signature at all). MiniLM is
scored on test_texts(), which share no text with the reference_texts() the signature was built on.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scanner.fingerprint import Fingerprinter  # noqa: E402
from scanner.fingerprint.build_signatures import DEFAULT_FIXTURES, embed_minilm, fixture_vectors  # noqa: E402
from scanner.fingerprint.reftext import test_texts  # noqa: E402
from scanner.fingerprint.signature import build_signature  # noqa: E402

MINILM = "sentence-transformers/all-MiniLM-L6-v2"


def short(model: str) -> str:
    return model.split("/", 1)[-1] if model != "unknown" else "unknown"


def top(guesses) -> tuple[str, float]:
    return (guesses[0].model, guesses[0].confidence) if guesses else ("unknown", 0.0)


def loo_cases(fp: Fingerprinter, fx: dict) -> list[tuple[str, np.ndarray, Fingerprinter]]:
    """(true model, vector, fingerprinter without that vector in its signature)."""
    cases = []
    for model, items in fx.items():
        vectors = np.array([v for _, v in items])
        for i in range(len(vectors)):
            sigs = dict(fp.signatures)
            rest = np.delete(vectors, i, axis=0)
            if model in sigs and len(rest):
                sigs[model] = build_signature(model, rest)
            elif model in sigs:
                del sigs[model]
            cases.append((model, vectors[i].astype(np.float32), Fingerprinter(fp.catalog, sigs)))
    return cases


def confusion(rows: list[tuple[str, str, float]], title: str) -> str:
    truth = sorted({t for t, _, _ in rows})
    preds = sorted({p for _, p, _ in rows} - {"unknown"}) + ["unknown"]
    table = defaultdict(Counter)
    for t, p, _ in rows:
        table[t][p] += 1
    out = [
        f"**{title}** (rows: true model; columns: top guess; cells: count)",
        "",
        "| true \\ guessed | " + " | ".join(short(p) for p in preds) + " |",
        "|---|" + "---|" * len(preds),
    ]
    for t in truth:
        out.append(f"| {short(t)} | " + " | ".join(str(table[t][p] or "") for p in preds) + " |")
    wrong_hi = sum(1 for t, p, c in rows if p not in (t, "unknown") and c >= 0.5)
    right = sum(1 for t, p, _ in rows if p == t)
    out += [
        "",
        f"right {right}/{len(rows)}, unknown {sum(1 for _, p, _ in rows if p == 'unknown')}, "
        f"wrong model with confidence >= 0.5: {wrong_hi}",
        "",
    ]
    return "\n".join(out)


def noisy(v: np.ndarray, target_cos: float, rng: np.random.Generator) -> np.ndarray:
    """v plus isotropic noise scaled so the result has cosine ~target_cos to v (norm kept)."""
    u = v / np.linalg.norm(v)
    z = rng.standard_normal(v.shape)
    z -= (z @ u) * u
    z /= np.linalg.norm(z)
    w = target_cos * u + np.sqrt(1 - target_cos**2) * z
    return (w * np.linalg.norm(v)).astype(np.float32)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES)
    args = parser.parse_args()
    rng = np.random.default_rng(20261126)
    fp = Fingerprinter.load()
    fx = fixture_vectors(args.fixtures, use="signature")
    tests = fixture_vectors(args.fixtures, use="test")
    minilm_test = embed_minilm(test_texts()).astype(np.float32)
    print("## Fingerprinting\n")
    print("Date 2026-11-26, machine 2 cores / 24 GiB (shared), numpy only, one process.\n")
    counts = ", ".join(f"{short(m)} {len(v)}" for m, v in sorted(fx.items()))
    print(
        f"Distinct real fixture vectors per model: {counts}; MiniLM: {fp.signatures[MINILM].n} reference "
        f"vectors (signature), {len(minilm_test)} held-out test vectors (other templates, other seed).\n"
    )

    # 1. in-sample vs held-out on the real fixtures, plus MiniLM held-out
    insample = [(m, *top(fp.guess(v.astype(np.float32)))) for m, items in fx.items() for _, v in items]
    cases = loo_cases(fp, fx)
    heldout = [(m, *top(f.guess(v))) for m, v, f in cases]
    heldout += [(m, *top(fp.guess(v.astype(np.float32)))) for m, items in tests.items() for _, v in items]
    mini = [(MINILM, *top(g)) for g in fp.guess_batch(minilm_test)]
    print(
        confusion(insample, "Real fixture vectors, in-sample (circular: each vector is in its own signature)")
    )
    print(
        confusion(
            heldout + mini, "Held-out: fixture vectors leave-one-out, TEI 128-d MiniLM, MiniLM test texts"
        )
    )

    # 1b. the same held-out cases with the model name printed next to each vector in its payload
    from scanner.fingerprint.extract import scan_bytes

    hinted = []
    for m, v, f in cases:
        hint = {}
        for name, w in fx[m]:
            if np.array_equal(w.astype(np.float32), v):
                found, _ = scan_bytes((args.fixtures / name).read_bytes())
                hint = next((x.hints for x in found if x.hints), {})
        hinted.append((m, *top(f.guess(v, None, hint))))
    print(
        confusion(
            hinted, "Held-out fixture vectors, with the model name found next to them in the file as a hint"
        )
    )

    # 2. random unit vectors
    print("**Random Gaussian unit vectors attributed to a model** (1,000 per size)\n")
    print("| dims | attributed | share |\n|---|---|---|")
    for d in (128, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096):
        x = rng.standard_normal((1000, d)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        hit = sum(1 for g in fp.guess_batch(x) if g)
        print(f"| {d} | {hit} | {hit / 10:.1f} % |")
    print()

    # 3. noise and truncation, held-out signatures
    rows_noise = defaultdict(list)
    for m, v, f in cases:
        for c in (0.9, 0.7, 0.5):
            rows_noise[f"noise cos {c}"].append((m, *top(f.guess(noisy(v, c, rng)))))
        for d in (128, 256, 512, 1024):
            if d < v.shape[0]:
                w = v[:d] / np.linalg.norm(v[:d])
                rows_noise[f"truncated to {d} (renormalised)"].append(
                    (m, *top(f.guess(w.astype(np.float32))))
                )
    for v in minilm_test[:100]:
        for c in (0.9, 0.7, 0.5):
            rows_noise[f"noise cos {c}"].append((MINILM, *top(fp.guess(noisy(v, c, rng)))))
        for d in (128, 256):
            w = v[:d] / np.linalg.norm(v[:d])
            rows_noise[f"truncated to {d} (renormalised)"].append((MINILM, *top(fp.guess(w))))
    print("**Noise and truncation** (fixture vectors leave-one-out + 100 MiniLM test vectors)\n")
    print(
        "| condition | n | right model | unknown | wrong model | wrong with conf >= 0.5 |\n|---|---|---|---|---|---|"
    )
    for cond, rows in rows_noise.items():
        right = sum(1 for t, p, _ in rows if p == t)
        unk = sum(1 for _, p, _ in rows if p == "unknown")
        wrong = [(t, p, c) for t, p, c in rows if p not in (t, "unknown")]
        print(
            f"| {cond} | {len(rows)} | {right} | {unk} | {len(wrong)} | {sum(1 for w in wrong if w[2] >= 0.5)} |"
        )
    print()

    # 3b. reliability: stated confidence against the share of right answers, every held-out guess above
    allrows = heldout + mini + [r for rows in rows_noise.values() for r in rows]
    print(
        "**Reliability of the confidence** (all held-out, noisy and truncated cases above that got a guess)\n"
    )
    print("| confidence | guesses | right model | right family |\n|---|---|---|---|")
    for lo, hi in ((0.2, 0.5), (0.5, 0.8), (0.8, 0.95), (0.95, 0.99), (0.99, 1.01)):
        sel = [(t, p) for t, p, c in allrows if p != "unknown" and lo <= c < hi]
        if sel:
            fam = sum(1 for t, p in sel if fp.catalog.get(t).family == fp.catalog.get(p).family)
            print(f"| {lo:.2f}–{min(hi, 1):.2f} | {len(sel)} | {sum(1 for t, p in sel if t == p)} | {fam} |")
    print()

    # 4. throughput, with a same-run baseline (norms + one matrix product, the floor of any scoring);
    # best of 3 runs each, because the machine is shared
    x = np.tile(minilm_test, (250, 1))[:50000]
    g = fp.group(384)
    xr = rng.standard_normal((50000, 384)).astype(np.float32)
    xr /= np.linalg.norm(xr, axis=1, keepdims=True)

    def best(fn) -> float:
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    t_base = best(lambda: (x / np.linalg.norm(x, axis=1)[:, None]) @ g.directions.T)
    t_ev = best(lambda: fp.evidence(x))
    t_full = best(lambda: fp.guess_batch(x))
    t_rand = best(lambda: fp.guess_batch(xr))
    print("**Throughput, 50,000 vectors of 384 dims, one core (best of 3)**\n")
    print("| step | vectors/s |\n|---|---|")
    print(
        f"| baseline: norms + one matrix product against {len(g.hyps)} mean directions | {len(x) / t_base:,.0f} |"
    )
    print(f"| evidence (all features, {len(g.hyps)} hypotheses) | {len(x) / t_ev:,.0f} |")
    print(f"| guess_batch, MiniLM vectors (every row gets guesses with reasons) | {len(x) / t_full:,.0f} |")
    print(f"| guess_batch, random vectors (rows end unknown) | {len(xr) / t_rand:,.0f} |")
    print()
    before_after(fp, fx, rng, minilm_test)
    return 0


def _cut(x: np.ndarray, d: int) -> np.ndarray:
    return (x[:, :d] / np.linalg.norm(x[:, :d], axis=1, keepdims=True)).astype(np.float32)


def _tops(fp: Fingerprinter, x: np.ndarray) -> list[str]:
    return [g[0].model if g else "unknown" for g in fp.guess_batch(np.asarray(x, dtype=np.float32))]


def _demo_rows(fp: Fingerprinter, folder: str) -> tuple[list[str], list[str]]:
    """Top model of each demo vector the scan pipeline accepts: alone, and through the engine's pool."""
    from scanner.fingerprint import SourcePool
    from scanner.model import Record, SourceRef
    from scanner.pipeline import Pipeline

    pipeline, pool = Pipeline(fingerprinter=fp), SourcePool(fp)
    alone, pooled = [], []
    for path in sorted(Path(folder).iterdir()):
        data = path.read_bytes()
        if path.suffix == ".gz":
            import gzip

            data = gzip.decompress(data)
        findings = [
            f
            for f in pipeline.scan(Record(data, SourceRef("file", path.name, path.name))).findings
            if f.kind == "embedding"
        ]
        alone += [f.model.model if f.model else "unknown" for f in findings]
        pool.apply(findings)
        pooled += [f.model.model if f.model else "unknown" for f in findings]
    return alone, pooled


def before_after(fp: Fingerprinter, fx: dict, rng: np.random.Generator, minilm_test: np.ndarray) -> None:
    """The shipped MiniLM signature (corpus + density check) against the one before it (400 template
    texts, mean + principal directions only), both measured here, on texts neither was built from."""
    import tempfile

    from scanner.demo import write_demo
    from scanner.fingerprint import SourcePool
    from scanner.fingerprint.reftext import reference_corpus, reference_texts

    old = dict(fp.signatures)
    old[MINILM] = build_signature(MINILM, embed_minilm(reference_texts(400)), ("reftext.reference_texts",))
    configs = {"before: 400 template texts, no density check": Fingerprinter(fp.catalog, old), "after": fp}
    corpus_held = embed_minilm(reference_corpus("heldout")).astype(np.float32)
    cohere = np.array([v for _, v in fx["cohere/embed-english-light-v3.0"]], dtype=np.float32)
    others = [
        v[:384] / np.linalg.norm(v[:384]) for m, items in fx.items() for _, v in items if v.shape[0] > 384
    ]
    others = np.array(others, dtype=np.float32)
    noisy06 = np.array([noisy(v, 0.6, rng) for v in minilm_test[:24]])
    with tempfile.TemporaryDirectory() as folder:
        write_demo(folder)
        demo = {name: _demo_rows(f, folder) for name, f in configs.items()}
    print("**MiniLM density check and per-source pooling: before/after, same run** (held-out texts only)\n")
    print(
        "| configuration | demo vectors alone | demo vectors, pooled per file | test_texts() | "
        "reference_corpus('heldout') | noise cos 0.6, 24 vectors: alone / pooled | random unit → any model "
        "(1,000 each: 128/256/384/512/768/1024/1536/3072/4096) | random 384-d, 20,000 | Cohere light → MiniLM "
        "(LOO, off-fp16) | MiniLM → Cohere | other models' 384-prefixes → MiniLM | heldout cut to 128 / 256 | "
        "test_texts() cut to 128 / 256 | evidence 384-d, vectors/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, f in configs.items():
        alone, pooled = demo[name]
        mini = lambda x, f=f: _tops(f, x).count(MINILM)  # noqa: E731
        randoms = []
        for d in (128, 256, 384, 512, 768, 1024, 1536, 3072, 4096):
            x = np.random.default_rng(d).standard_normal((1000, d)).astype(np.float32)
            randoms.append(sum(1 for g in f.guess_batch(x / np.linalg.norm(x, axis=1, keepdims=True)) if g))
        x = np.random.default_rng(1).standard_normal((20000, 384)).astype(np.float32)
        r384 = sum(1 for g in f.guess_batch(x / np.linalg.norm(x, axis=1, keepdims=True)) if g)
        coh_mini = 0
        off16 = cohere + np.float32(1e-7)
        off16 /= np.linalg.norm(off16, axis=1, keepdims=True)
        for i in range(len(cohere)):
            sigs = dict(f.signatures)
            sigs["cohere/embed-english-light-v3.0"] = build_signature(
                "cohere/embed-english-light-v3.0", np.delete(cohere, i, axis=0).astype(np.float64)
            )
            loo = Fingerprinter(f.catalog, sigs)
            coh_mini += _tops(loo, cohere[i : i + 1]).count(MINILM) + _tops(loo, off16[i : i + 1]).count(
                MINILM
            )
        mini_all = np.vstack([minilm_test, corpus_held])
        to_cohere = _tops(f, mini_all).count("cohere/embed-english-light-v3.0")
        pool = SourcePool(f)
        single = mini(noisy06)
        from scanner.model import Candidate, Finding, SourceRef

        src = SourceRef("file", "n", "n")
        findings = [
            Finding(Candidate(values=v, encoding="json-array", start=0, end=0), src, 0, 0, 1.0, (), g)
            for v, g in zip(noisy06, f.guess_batch(noisy06), strict=True)
        ]
        pool.apply(findings)
        pooled_noise = sum(1 for x in findings if x.model and x.model.model == MINILM)
        t0 = time.perf_counter()
        for _ in range(3):
            f.evidence(np.tile(minilm_test, (50, 1)))
        rate = 3 * 50 * len(minilm_test) / (time.perf_counter() - t0)
        print(
            f"| {name} | {alone.count(MINILM)}/{len(alone)} | {pooled.count(MINILM)}/{len(pooled)} | "
            f"{mini(minilm_test)}/{len(minilm_test)} | {mini(corpus_held)}/{len(corpus_held)} | "
            f"{single}/24 / {pooled_noise}/24 | {'/'.join(map(str, randoms))} | {r384} | "
            f"{coh_mini}/{2 * len(cohere)} | {to_cohere}/{len(mini_all)} | {mini(others)}/{len(others)} | "
            f"{mini(_cut(corpus_held, 128))} / {mini(_cut(corpus_held, 256))} of {len(corpus_held)} | "
            f"{mini(_cut(minilm_test, 128))} / {mini(_cut(minilm_test, 256))} of {len(minilm_test)} | "
            f"{rate:,.0f} |"
        )
    print()


if __name__ == "__main__":
    raise SystemExit(main())
