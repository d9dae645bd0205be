"""Shared settings of the fuzz tests (hypothesis): how many generated inputs each parser gets.

`FUZZ_EXAMPLES` is 2,000 in the default run; set `KERAS_CLIP_FUZZ_EXAMPLES` for more (or fewer).
Runs are derandomized (the same inputs every time) and keep no example database.
"""

import os

import hypothesis
from hypothesis import strategies as st

FUZZ_EXAMPLES = int(os.environ.get("KERAS_CLIP_FUZZ_EXAMPLES", "2000"))


def fuzz_settings():
    return hypothesis.settings(max_examples=FUZZ_EXAMPLES, deadline=None,
                               suppress_health_check=list(hypothesis.HealthCheck), database=None, derandomize=True)


@st.composite
def mutated_bytes(draw, data):
    """`data` with a few bytes flipped, cut short, a span replaced by random bytes, or random bytes inserted."""
    data = bytearray(data)
    kind = draw(st.sampled_from(["flip", "truncate", "splice", "insert"]))
    position = draw(st.integers(0, max(len(data) - 1, 0)))
    if kind == "flip":
        for offset, mask in draw(st.lists(st.tuples(st.integers(0, len(data) - 1), st.integers(1, 255)), min_size=1,
                                          max_size=8)):  # fmt: skip
            data[offset] ^= mask
    elif kind == "truncate":
        del data[position:]
    else:
        end = position + (draw(st.integers(0, 16)) if kind == "splice" else 0)
        data[position:end] = draw(st.binary(min_size=1, max_size=32))
    return bytes(data)
