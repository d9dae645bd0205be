"""Shared settings of the fuzz tests (hypothesis): how many generated inputs each parser gets.

`FUZZ_EXAMPLES` is 2,000 in the default run; set `KERAS_CLIP_FUZZ_EXAMPLES` for more (or fewer).
Runs are derandomized (the same inputs every time) and keep no example database.
"""

import os

import hypothesis

FUZZ_EXAMPLES = int(os.environ.get("KERAS_CLIP_FUZZ_EXAMPLES", "2000"))


def fuzz_settings():
    return hypothesis.settings(max_examples=FUZZ_EXAMPLES, deadline=None,
                               suppress_health_check=list(hypothesis.HealthCheck), database=None, derandomize=True)
