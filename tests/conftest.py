import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import pytest  # noqa: E402


def _xdist_worker(config):
    return hasattr(config, "workerinput")


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook turns xdist_group markers into node ids
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist, the tests reading one background job share a worker (`--dist loadgroup`), so that the
    job runs once; a group is named after its first test, a name every worker computes alike."""
    if _xdist_worker(config):
        from tests.helpers import background

        for item, group in background.groups_of(items).items():
            item.add_marker(pytest.mark.xdist_group(group))


def pytest_collection_finish(session):
    """Starts the background jobs of the collected tests (tests/helpers/background.py). Under pytest-xdist each
    worker collects every test but runs only some: there a job runs when its first test asks for it, and the two
    workers keep both cores busy instead."""
    from tests.helpers import background

    if _xdist_worker(session.config) and session.config.getvalue("loadgroup"):
        background.check_xdist_took_the_groups(session.items)
    if not session.config.option.collectonly and not _xdist_worker(session.config):
        background.run_one_after_another(background.jobs_of(session.items))


def pytest_sessionfinish(session):
    """Stops the background jobs this process started (every xdist worker too) and removes their folders."""
    from tests.helpers import background

    background.stop_every_job()


@pytest.fixture(autouse=True)
def _float32_policy():
    """Every test starts and ends with the float32 dtype policy, whatever it set."""
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture(scope="session")
def vit_b32_reference():
    """OpenAI's full-size ViT-B/32 with random weights, built once per run: (float32 torch model, state dict)."""
    from tests.helpers.model_configs import architecture
    from tests.helpers.openai_reference import random_reference_model

    return random_reference_model(architecture("ViT-B/32"), seed=0)


@pytest.fixture(scope="session")
def vit_b32_model(vit_b32_reference):
    """keras_clip's ViT-B/32 with the weights of `vit_b32_reference`, built once per run."""
    import keras_clip

    return keras_clip.build_model(vit_b32_reference[1])
