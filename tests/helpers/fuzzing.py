"""Shared hypothesis settings of the fuzz tests: 2,000 generated inputs per parser in the default run.

Set KERAS_CLIP_FUZZ_EXAMPLES (e.g. 100000) for a longer run. Inputs are derandomised (the same in every
run) and no example database is kept, so a default run is reproducible and writes nothing.
"""

import os

import hypothesis

FUZZ_EXAMPLES = int(os.environ.get("KERAS_CLIP_FUZZ_EXAMPLES", "2000"))


def fuzz_settings():
    return hypothesis.settings(max_examples=FUZZ_EXAMPLES, deadline=None,
                               suppress_health_check=list(hypothesis.HealthCheck), database=None,
                               derandomize=True)  # fmt: skip
