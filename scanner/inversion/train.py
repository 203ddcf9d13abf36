"""Training script for a small trained inverter (MiniLM vector → text). UNTRAINED: no weights ship.

Why it exists: a decoder's first hypothesis would give the white-box search a far better start than
growing from the empty string (Vec2Text: base hypothesis then correction, inversion.md §2). It was
not trained in the session that wrote it (2 shared CPU cores, no GPU), so the search does not use it.

Design (kept small so weights stay well under 50 MB):
- text: only our own template generators below (names, emails, phones, cards, support questions);
  nothing from a model hub. Add in-domain log lines with ``--text FILE`` (one text per line).
- targets: MiniLM embeddings computed locally with scanner.inversion.models.Encoder.
- model: the 384-d vector → 4 prefix states → a 2-layer GRU (hidden 512) over MiniLM's own wordpiece
  vocabulary, output layer tied to a 256-d embedding: about 9.5 M parameters (≈ 38 MB fp32, 19 MB fp16).

    python -m scanner.inversion.train --pairs 200000 --epochs 3 --device cuda --out inverter.pt
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

# Short fixed-order samples of scanner.wordlists' names, not the whole gazetteer: the generator draws
# by index, so these lists (with the template fillers below) fix the pairs a seed makes.
FIRST = [
    "james",
    "mary",
    "john",
    "patricia",
    "robert",
    "jennifer",
    "michael",
    "linda",
    "sarah",
    "david",
    "emily",
    "anna",
    "mike",
    "jane",
]
LAST = [
    "smith",
    "johnson",
    "williams",
    "brown",
    "jones",
    "garcia",
    "miller",
    "davis",
    "green",
    "lee",
    "doe",
    "wilson",
    "taylor",
]
DOMAINS = ["gmail.com", "example.com", "acme.io", "yahoo.com", "outlook.com", "corp.net"]
TEMPLATES = [
    "my name is {first} {last}",
    "hi, this is {first} {last}, my email is {email}",
    "please send the invoice to {email}",
    "call me at {phone} {when}",
    "my card number is {card}",
    "my social security number is {ssn}",
    "{first} {last} asked about the {thing} {when}",
    "how do i {verb} my {thing}",
    "why was my {thing} {state}",
    "the {thing} at {ip} is {state}",
    "can i {verb} the {thing} for my {thing2}",
]
WHEN = ["tomorrow morning", "after six", "on monday", "next week", "today", "tonight"]
THINGS = [
    "password",
    "account",
    "order",
    "package",
    "subscription",
    "invoice",
    "payment",
    "card",
    "server",
    "database",
    "plan",
]
VERBS = ["reset", "change", "cancel", "update", "upgrade", "delete", "renew", "track"]
STATES = ["declined", "down", "locked", "delayed", "refunded", "blocked"]


def _luhn_card(rng: random.Random) -> str:
    digits = [4] + [rng.randrange(10) for _ in range(14)]
    total = 0
    for i, d in enumerate(reversed(digits)):
        total += (d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 == 0 else d
    digits.append((10 - total % 10) % 10)
    s = "".join(map(str, digits))
    return " ".join(s[i : i + 4] for i in range(0, 16, 4))


def generate(rng: random.Random) -> str:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    return rng.choice(TEMPLATES).format(
        first=first,
        last=last,
        email=f"{first}.{last}@{rng.choice(DOMAINS)}",
        phone=f"{rng.randrange(200, 999)}-{rng.randrange(200, 999)}-{rng.randrange(10000):04d}",
        card=_luhn_card(rng),
        ssn=f"{rng.randrange(100, 665)}-{rng.randrange(10, 99)}-{rng.randrange(1000, 9999)}",
        ip=f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        when=rng.choice(WHEN),
        thing=rng.choice(THINGS),
        thing2=rng.choice(THINGS),
        verb=rng.choice(VERBS),
        state=rng.choice(STATES),
    )


def build_model(vocab: int, dim: int = 384):  # noqa: ANN201 - torch imported lazily
    import torch

    class Decoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb = torch.nn.Embedding(vocab, 256)
            self.prefix = torch.nn.Linear(dim, 4 * 256)
            self.init = torch.nn.Linear(dim, 2 * 512)
            self.rnn = torch.nn.GRU(256, 512, num_layers=2, batch_first=True)
            self.proj = torch.nn.Linear(512, 256)

        def forward(self, vec, ids):  # noqa: ANN001, ANN202
            b = vec.shape[0]
            prefix = self.prefix(vec).view(b, 4, 256)
            h0 = torch.tanh(self.init(vec)).view(b, 2, 512).transpose(0, 1).contiguous()
            out, _ = self.rnn(torch.cat([prefix, self.emb(ids)], dim=1), h0)
            return self.proj(out[:, 3:-1]) @ self.emb.weight.T  # logits for ids[:, 0:]

    return Decoder()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=200_000)
    ap.add_argument("--text", type=Path, help="extra in-domain texts, one per line")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", type=Path, default=Path("inverter.pt"))
    args = ap.parse_args()

    import torch

    from scanner.inversion.models import load_encoder

    rng = random.Random(0)
    texts = [generate(rng) for _ in range(args.pairs)]
    if args.text:
        texts += [t for t in args.text.read_text(encoding="utf-8").splitlines() if t.strip()]
    enc = load_encoder(device=args.device)
    vecs = torch.from_numpy(enc.embed_texts(texts, batch_size=512))
    ids = [enc.tokenize(t)[:32] + [enc.sep_id] for t in texts]
    model = build_model(enc.vocab_size).to(args.device)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    for epoch in range(args.epochs):
        order = list(range(len(texts)))
        rng.shuffle(order)
        for start in range(0, len(order), args.batch):
            idx = order[start : start + args.batch]
            width = max(len(ids[i]) for i in idx)
            batch = torch.full((len(idx), width), enc.pad_id, dtype=torch.long)
            for row, i in enumerate(idx):
                batch[row, : len(ids[i])] = torch.tensor(ids[i])
            batch = batch.to(args.device)
            logits = model(vecs[idx].to(args.device), batch)
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), batch.reshape(-1), ignore_index=enc.pad_id
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch}: loss {loss.item():.3f}")
    torch.save({k: v.half() for k, v in model.state_dict().items()}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
