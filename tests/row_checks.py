"""What the flattener's tests share: rows compared exactly, and run logs with a hostile
value put in at a random place."""

from __future__ import annotations

import math
import random

# Values that a run log holds where another type belongs, or that the flattener reads specially.
HOSTILE = [None, True, 0, 1, -1, 2**70, 1.5, float("nan"), float("inf"), -0.0, "", "x", "2024-01-01 00:00:00",
           [], [1.0, 2.0], [1, "a"], [["a", 1]], {}, {"0": 1.0}, {"01": 1.0, "1": 2.0}, {"2": 1.0, "1": 2.0},
           {"kind": "metric", "value": [0.5, float("nan")]}, {"kind": "json", "value": 3}, {"a": {"b": True}},
           {"0": "t", "1": "u"}, {"0": True}, {"0": {"x": 1.0}}, {"0": {"x": 1.0, "y": "a"}, "1": {"x": 2.0, "y": "b"}},
           {"a.b": 1.0}]


def same(a, b) -> bool:
    """Equal rows, of equal types, in the same order; NaN equal to NaN and -0.0 told apart from 0.0."""
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def paths(value, trail=()):
    """Every (path, value) inside nested dicts and lists."""
    yield trail, value
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from paths(inner, trail + (key,))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from paths(inner, trail + (index,))


def put_hostile(data, rng: random.Random) -> None:
    """Replace the value at a random path of ``data`` (in place) by a hostile one."""
    trail, _ = rng.choice([p for p in paths(data) if p[0]])
    for step in trail[:-1]:
        data = data[step]
    data[trail[-1]] = rng.choice(HOSTILE)
