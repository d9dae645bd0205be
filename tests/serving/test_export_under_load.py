"""An exported SavedModel under load: 8 threads x 100 requests mixing good images, corrupt bytes, oversize
images and empty batches, served by one process (tests/helpers/serving_load.py, run in the background).
Every good answer equals the eager model's, every bad request fails with an InvalidArgumentError naming
its image, and memory stays bounded."""

import pytest

from tests.helpers.memory import capped_result
from tests.helpers.serving_load import load_test_job

# 100 requests per thread (500 until the suite needed the time: 18.6 s of a worker for 4,000 requests).
TINY = load_test_job("tiny", threads=8, requests_per_thread=100, max_pixels=40000, cap_mb=2500)
VIT_B32 = load_test_job("ViT-B/32", threads=8, requests_per_thread=50, max_pixels=2_000_000, cap_mb=4000,
                        large=True)  # fmt: skip


def _report(job, requests):
    run = capped_result(job)
    assert not run.killed and run.returncode == 0 and len(run.results) == 1, run
    report = run.results[0]
    assert report["failures"] == [], report["failures"]
    assert report["answered"] + report["refused"] == requests and report["refused"] == requests // 2
    return report


@pytest.mark.background(TINY)
def test_eight_threads_of_good_corrupt_oversize_and_empty_requests():
    report = _report(TINY, 8 * 100)
    print(f"\ntiny model, 8 threads x 100 requests: {report['seconds']:.1f} s "
          f"({8 * 100 / report['seconds']:.0f} requests/s), {report['refused']} refused, peak memory "
          f"+{report['peak_growth_mb']:.0f} MB over {report['rss_mb_before']:.0f} MB")  # fmt: skip
    # Eight images decoded at once (at most 120 KB each, and their resampling) and the requests in flight.
    assert report["peak_growth_mb"] < 300, report


@pytest.mark.full_size
@pytest.mark.background(VIT_B32)
def test_vit_b32_under_load_with_camera_sized_images():
    report = _report(VIT_B32, 8 * 50)
    print(f"\nViT-B/32, 8 threads x 50 requests: {report['seconds']:.1f} s, peak memory "
          f"+{report['peak_growth_mb']:.0f} MB over {report['rss_mb_before']:.0f} MB")  # fmt: skip
    assert report["peak_growth_mb"] < 1000, report
