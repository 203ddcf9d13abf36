"""Deterministic reference texts, used to build and to test model signatures.

Why not a downloaded data set: the build must run offline on any machine. Why not only templates: a
signature built from one narrow generated vocabulary learns that vocabulary's direction, and real short
texts (support tickets, search queries) then fall outside it (the first MiniLM signature left 6 of 10
demo vectors ``unknown``). :func:`reference_corpus` therefore mixes three unrelated sources:

* sentences from the docstrings of the Python standard library (read with :mod:`ast`, nothing is
  imported), filtered to natural language of 3-30 words;
* short query-style and ticket-style texts from their own generator (:func:`_requests`), with a
  vocabulary chosen apart from ``scanner/demo.py`` and the test templates below;
* the original template sentences and odd inputs (:func:`reference_texts`).

It is shuffled with a fixed seed and split: the signature is built on ``"signature"``, the benchmark
scores ``"heldout"``. :func:`test_texts` is a further held-out family (other templates, other seed)
that the tests use.
"""

from __future__ import annotations

import ast
import random
import re
import sysconfig
from functools import cache
from pathlib import Path

_NAMES = [
    "Alice",
    "Bob",
    "Chen",
    "Dana",
    "Emeka",
    "Fatima",
    "Gustavo",
    "Hana",
    "Ivan",
    "Jules",
    "Kofi",
    "Lena",
]
_CITIES = ["Lisbon", "Osaka", "Nairobi", "Toronto", "Berlin", "Lima", "Perth", "Oslo", "Cairo", "Austin"]
_PRODUCTS = [
    "laptop",
    "coffee grinder",
    "running shoes",
    "router",
    "desk lamp",
    "backpack",
    "blender",
    "tent",
]
_ADJ = ["quiet", "broken", "excellent", "slow", "expensive", "reliable", "confusing", "lightweight", "noisy"]
_TOPICS = [
    "tax returns",
    "a sprained ankle",
    "the quarterly report",
    "mortgage rates",
    "a failed deployment",
    "the school trip",
    "a data breach",
    "insulin dosage",
    "the wedding menu",
    "battery life",
]
_VERBS = ["fixed", "cancelled", "approved", "rejected", "postponed", "reviewed", "shipped", "refunded"]
_THINGS = ["the invoice", "my order", "the pull request", "the appointment", "the contract", "the ticket"]
_FOODS = ["ramen", "lentil soup", "tacos", "grilled salmon", "apple pie", "dumplings", "a green salad"]
_SCIENCE = [
    "photosynthesis",
    "black holes",
    "plate tectonics",
    "vaccines",
    "neural networks",
    "tides",
    "the immune system",
    "inflation",
    "compilers",
    "glaciers",
]
_ANIMALS = ["cat", "dog", "parrot", "horse", "goldfish", "rabbit", "owl", "fox"]
_WEATHER = ["rain", "snow", "a heatwave", "fog", "strong wind", "a thunderstorm"]

_REFERENCE_TEMPLATES = [
    "{name} said the {product} was {adj} and asked for a refund.",
    "How do I explain {science} to a ten-year-old?",
    "The meeting about {topic} moved to Thursday in {city}.",
    "We {verb} {thing} after the customer called twice.",
    "Best place in {city} for {food}?",
    "My {animal} refuses to eat {food} since the move.",
    "Error 503 while uploading the file; retry scheduled in 5 minutes.",
    "Please send {name} the summary of {topic} before noon.",
    "Is the {product} worth it if it is this {adj}?",
    "Forecast for {city}: {weather} through the weekend.",
    "{name} is allergic to penicillin and takes 20 mg of lisinopril daily.",
    "The patient reported {topic} after the second visit.",
    "Refactor the parser so it stops allocating on every line.",
    "A short history of {science}, in three paragraphs.",
    "Card ending 4242 was charged twice for {thing}.",
]

_TEST_TEMPLATES = [
    "Why does my {product} feel so {adj} after the update?",
    "{name} flew from {city} to discuss {topic} with the board.",
    "Recipe: {food} for four people, ready in thirty minutes.",
    "Our {animal} got out during {weather} last night.",
    "Summarise the latest research on {science} for a newsletter.",
    "Ticket closed: we {verb} {thing} and notified {name}.",
    "What should I pack for {weather} in {city}?",
    "The audit found that {thing} was {verb} without a signature.",
    "Lecture notes: {science}, week seven.",
    "{name}'s phone number is on the form about {topic}.",
    "Compare this {product} with the cheaper one; mine is {adj}.",
    "The kernel panicked right after the driver update.",
]


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        name=rng.choice(_NAMES),
        city=rng.choice(_CITIES),
        product=rng.choice(_PRODUCTS),
        adj=rng.choice(_ADJ),
        topic=rng.choice(_TOPICS),
        verb=rng.choice(_VERBS),
        thing=rng.choice(_THINGS),
        food=rng.choice(_FOODS),
        science=rng.choice(_SCIENCE),
        animal=rng.choice(_ANIMALS),
        weather=rng.choice(_WEATHER),
    )


# Short and odd inputs (single words, code, ids, other languages) so that a signature does not only
# know well-formed English sentences: real leaked vectors embed search queries and log snippets too.
_REFERENCE_ODD = [
    "{animal}",
    "{food}",
    "{city}",
    "{product} {adj}",
    "SELECT * FROM orders WHERE id = 42;",
    "def {verb}(x): return x + 1",
    "user_id=8812 status=ok",
    "hello",
    "¿Dónde está la estación de {city}?",
    "Wie spät ist es in {city}?",
    "ticket #4471 {verb}",
    "{science}?",
    "lorem ipsum dolor sit amet",
]
_TEST_ODD = [
    "{name}",
    "{weather}",
    "{adj} {animal}",
    "test",
    "for i in range(10): print(i)",
    "GET /api/v1/users 200",
    "Bonjour, je cherche {food}.",
    "{topic}",
    "order 99812 {verb}",
    "今日は{city}に行きます",
    "What is {science}",
]


def _generate(templates: list[str], count: int, seed: int, odd: list[str] | None = None) -> list[str]:
    rng = random.Random(seed)
    out: list[str] = []
    seen: set[str] = set()
    attempts = 0
    while len(out) < count and attempts < count * 50:
        attempts += 1
        pool = odd if odd and rng.random() < 0.25 else templates
        text = _fill(rng.choice(pool), rng)
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def reference_texts(count: int = 400) -> list[str]:
    """Texts the signatures are built from."""
    return _generate(_REFERENCE_TEMPLATES, count, seed=20261126, odd=_REFERENCE_ODD)


def test_texts(count: int = 200) -> list[str]:
    """Held-out texts: other templates, other seed, no overlap with :func:`reference_texts`."""
    ref = set(reference_texts())
    return [t for t in _generate(_TEST_TEMPLATES, count + 50, seed=4242, odd=_TEST_ODD) if t not in ref][
        :count
    ]


# ---------------------------------------------------------------------------- diverse reference corpus
CORPUS_SEED = 20261126
STDLIB_CAP = 2400
REQUEST_COUNT = 1200
HELDOUT_SHARE = 0.15
# Docstrings of these parts are mostly test data, generated tables or not English.
_STDLIB_SKIP = ("test", "idlelib", "lib2to3", "site-packages", "encodings", "pydoc_data", "ensurepip")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_CODEY = re.compile(r">>>|::|\b\w+\(|\w_\w|[=<>{}\[\]|\\`*#@$%^~]|\.\w+\.|--|\b[a-z]+\.[a-z]+\b")


def _natural(sentence: str) -> bool:
    """3-30 words of prose: starts with a capital, mostly letters, no code, markup or paths."""
    words = sentence.split()
    if not 3 <= len(words) <= 30 or not sentence[0].isupper() or _CODEY.search(sentence):
        return False
    letters = sum(ch.isalpha() or ch == " " for ch in sentence)
    return letters / len(sentence) > 0.88


def stdlib_sentences(cap: int = STDLIB_CAP, seed: int = CORPUS_SEED) -> list[str]:
    """Up to ``cap`` distinct natural-language sentences from the standard library's docstrings.

    The sources are parsed, never imported (importing all of the stdlib has side effects). The result
    depends on the Python version's stdlib text; the build records how many it used.
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    seen: set[str] = set()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).parts
        if any(part in _STDLIB_SKIP or part.startswith("test") for part in rel):
            continue
        try:
            tree = ast.parse(path.read_bytes())
        except (SyntaxError, ValueError, OSError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            doc = ast.get_docstring(node)
            if not doc:
                continue
            for para in re.split(r"\n\s*\n", doc):
                flat = " ".join(para.split())
                for sentence in _SENTENCE_END.split(flat):
                    sentence = sentence.strip()
                    if _natural(sentence):
                        seen.add(sentence)
    ordered = sorted(seen)
    random.Random(seed).shuffle(ordered)
    return ordered[:cap]


# Query- and ticket-style requests about everyday services. Vocabulary kept apart from scanner/demo.py
# (no passwords, refunds, orders, cards, subscriptions, visas, lawyers, drugs of the demo) so that the
# demo stays an honest check of texts the signature never saw.
_R_SUBJECTS = [
    "printer",
    "thermostat",
    "e-reader",
    "smart speaker",
    "bike lock",
    "dishwasher",
    "headphones",
    "sewing machine",
    "electric scooter",
    "baby monitor",
    "garden hose",
    "projector",
]
_R_PROBLEMS = [
    "keeps beeping",
    "won't turn on",
    "makes a grinding noise",
    "loses connection every hour",
    "shows a blinking red light",
    "drains the battery overnight",
    "is stuck on the logo screen",
    "smells like burning plastic",
]
_R_PLACES = ["Valencia", "Hanoi", "Accra", "Montreal", "Krakow", "Cusco", "Auckland", "Reykjavik", "Tunis"]
_R_PEOPLE = ["my landlord", "the courier", "my neighbour", "the plumber", "my manager", "the school nurse"]
_R_ACTS = [
    "repaint a radiator",
    "descale a kettle",
    "prune an olive tree",
    "file a noise complaint",
    "transfer photos to a new phone",
    "unclog a shower drain",
    "renew a library loan",
    "calibrate a monitor",
    "freeze fresh basil",
    "ask for a parking permit",
]
_R_HOBBIES = [
    "chess",
    "pottery",
    "bouldering",
    "birdwatching",
    "sourdough",
    "kayaking",
    "knitting",
    "astronomy",
]
_R_SERVICES = ["gym membership", "internet plan", "storage unit", "car rental", "bus pass", "museum tickets"]
_R_WHEN = ["since Monday", "after the firmware update", "every morning", "twice this week", "since the move"]
_R_TEMPLATES = [
    "{subject} {problem}",
    "my {subject} {problem} {when}",
    "why does the {subject} keep {problem2}",
    "how to {act}",
    "how long does it take to {act}",
    "cheapest way to {act} in {place}",
    "{hobby} clubs in {place}",
    "{hobby} for beginners",
    "is {hobby} expensive to start",
    "{place} weather in april",
    "things to do in {place} with kids",
    "{service} cancellation fee",
    "can I pause my {service}",
    "Hello, {people} says the {subject} was delivered but nothing is here.",
    "Hi team, the {subject} I bought {problem} {when}, what are my options?",
    "Ticket 58{n}: customer reports the {subject} {problem}.",
    "Escalation: {people} cannot access the {service} portal {when}.",
    "Could someone look at my {service}? It was renewed without asking.",
    "Thanks for the quick reply, the {subject} works again.",
    "Following up on my message about the {subject}, still no answer.",
    "Urgent: {people} locked out of the {service} account",
    "{subject} manual pdf",
    "{subject} vs {subject2}",
    "warranty on a {subject} bought in {place}",
]


def _requests(count: int = REQUEST_COUNT, seed: int = CORPUS_SEED + 1) -> list[str]:
    rng = random.Random(seed)
    out: dict[str, None] = {}
    for _ in range(count * 20):
        if len(out) >= count:
            break
        problem = rng.choice(_R_PROBLEMS)
        text = rng.choice(_R_TEMPLATES).format(
            subject=rng.choice(_R_SUBJECTS),
            subject2=rng.choice(_R_SUBJECTS),
            problem=problem,
            problem2=problem.split(" ", 1)[-1],
            place=rng.choice(_R_PLACES),
            people=rng.choice(_R_PEOPLE),
            act=rng.choice(_R_ACTS),
            hobby=rng.choice(_R_HOBBIES),
            service=rng.choice(_R_SERVICES),
            when=rng.choice(_R_WHEN),
            n=rng.randrange(100, 999),
        )
        out.setdefault(text)
    return list(out)


@cache
def _corpus() -> tuple[tuple[str, ...], tuple[str, ...]]:
    texts = list(dict.fromkeys([*stdlib_sentences(), *_requests(), *reference_texts()]))
    held_family = set(test_texts())
    texts = [t for t in texts if t not in held_family]
    random.Random(CORPUS_SEED).shuffle(texts)
    cut = int(len(texts) * (1 - HELDOUT_SHARE))
    return tuple(texts[:cut]), tuple(texts[cut:])


def reference_corpus(split: str = "signature") -> list[str]:
    """The diverse reference set: ``"signature"`` builds the signature, ``"heldout"`` scores it."""
    signature, heldout = _corpus()
    if split == "signature":
        return list(signature)
    if split == "heldout":
        return list(heldout)
    raise ValueError(f"split must be 'signature' or 'heldout', not {split!r}")
