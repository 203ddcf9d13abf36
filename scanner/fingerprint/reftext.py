"""A deterministic generator of varied English sentences, used to build and to test model signatures.

Why generated text: the signatures must not depend on a downloaded data set, and the tests need a text
set that the signatures never saw. :func:`reference_texts` and :func:`test_texts` draw from disjoint
template families and different seeds, so a MiniLM signature built on the first is evaluated honestly
on the second.
"""

from __future__ import annotations

import random

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
