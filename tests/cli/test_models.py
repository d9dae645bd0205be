"""`keras-clip models`: every released model, and its details."""

from keras_clip.models.presets import PRESETS
from tests.helpers.cli import run


def test_models_lists_every_release(capsys):
    status, out, _ = run(capsys, "models")
    assert status == 0 and out.split() == list(PRESETS)


def test_details_give_source_resolution_size_and_top1(capsys):
    status, out, _ = run(capsys, "models", "--details")
    assert status == 0
    rows = {line.split()[0]: line.split()[1:] for line in out.strip().splitlines()[1:]}
    assert set(rows) == set(PRESETS)
    assert rows["ViT-B/32"] == ["openaipublic.azureedge.net", "224", "151", "63.2"]
    assert rows["ViT-H-14/dfn5b"] == ["apple/DFN5B-CLIP-ViT-H-14", "224", "986", "83.4"]
    assert rows["ViT-SO400M-14-SigLIP-384/webli"] == ["google/siglip-so400m-patch14-384", "384"]  # size unknown
