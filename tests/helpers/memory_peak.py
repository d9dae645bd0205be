"""The most memory a block of code holds at once, as Python's allocators see it (numpy's arrays included).

Example:
>>> with PeakMemory() as memory:
...     read_torch_state_dict(path)
>>> memory.peak < 64 << 20
True
"""

import tracemalloc


class PeakMemory:
    """Traces allocations made inside the block (`tracemalloc`); `peak` is their largest total, in bytes."""

    def __enter__(self):
        self.peak = None
        tracemalloc.start()
        return self

    def __exit__(self, *exc_info):
        self.peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return False
