"""LAION, DataComp, MetaCLIP and DFN checkpoints, as transformers and open_clip publish them, against transformers.

Each family's model (tests/helpers/transformers_reference.py: reduced width, the family's real head
width, MLP ratio and activation) is written as a transformers folder and as an open_clip folder and
loaded by `keras_clip.load` in a process where torch cannot be imported. Embeddings and logits must
equal transformers' `CLIPModel` within max |ours - reference| <= 1e-5 * max |reference|; the returned
preprocessing must be the folder's (mean and std 0.5 here, as many of these checkpoints use).
"""

import json

import numpy as np
import pytest

from keras_clip.checkpoints.publisher_configs import open_clip_architecture, transformers_architecture
from tests.helpers import checkpoint_files
from tests.helpers.model_inputs import random_images, random_tokens
from tests.helpers.transformers_reference import (
    FAMILIES,
    RESOLUTION,
    family_configs,
    reference_model,
    reference_outputs,
    write_open_clip_folder,
    write_transformers_folder,
)

RELATIVE_TOLERANCE = 1e-5
# eot_padded: tokens padded with the end-of-text id, as transformers' tokenizers for these checkpoints pad.
OUTPUTS = ("image_features", "text_features", "logits_per_image", "eot_padded_text_features")

LOAD_SCRIPT = """
import json
import numpy as np
import keras_clip

job = json.load(open({job!r}))
inputs = np.load(job["inputs"])
results, preprocessing = {{}}, {{}}
for label, folder in job["folders"].items():
    model, preprocess = keras_clip.load(folder, cache_dir=job["cache"])
    images, tokens = inputs["images"], inputs["tokens"]
    results[label + ".image_features"] = model.encode_image(images).numpy()
    results[label + ".text_features"] = model.encode_text(tokens).numpy()
    results[label + ".logits_per_image"] = model({{"images": images, "tokens": tokens}})[0].numpy()
    results[label + ".eot_padded_text_features"] = model.encode_text(inputs["eot_padded_tokens"]).numpy()
    preprocessing[label] = {{key: preprocess.get_config()[key] for key in ("mean", "std", "interpolation")}}
np.savez(job["outputs"], **results)
json.dump(preprocessing, open(job["preprocessing"], "w"))
"""


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    """Every family written both ways, loaded torch-free: (outputs, preprocessing, reference outputs)."""
    folder = tmp_path_factory.mktemp("families")
    images, tokens = random_images(2, RESOLUTION, seed=3), random_tokens(3, seed=3)
    eot_padded = np.where(np.cumsum(tokens == 49407, axis=1) > 0, 49407, tokens)
    folders, expected = {}, {}
    for seed, family in enumerate(sorted(FAMILIES)):
        transformers_config, model_cfg = family_configs(family)
        model = reference_model(transformers_config, seed=seed)
        expected[family] = reference_outputs(model, images, tokens)
        expected[family]["eot_padded_text_features"] = reference_outputs(model, images, eot_padded)["text_features"]
        folders[f"{family}.transformers"] = write_transformers_folder(folder / family / "transformers", model)
        folders[f"{family}.open_clip"] = write_open_clip_folder(folder / family / "open_clip", model, model_cfg)
    np.savez(folder / "inputs.npz", images=images, tokens=tokens, eot_padded_tokens=eot_padded)
    job = {"folders": folders, "inputs": str(folder / "inputs.npz"), "outputs": str(folder / "outputs.npz"),
           "preprocessing": str(folder / "preprocessing.json"), "cache": str(folder / "cache")}  # fmt: skip
    (folder / "job.json").write_text(json.dumps(job))
    result = checkpoint_files.run_without_torch(LOAD_SCRIPT.format(job=str(folder / "job.json")))
    assert result.returncode == 0, result.stderr[-5000:]
    return dict(np.load(folder / "outputs.npz")), json.loads((folder / "preprocessing.json").read_text()), expected


@pytest.mark.parametrize("layout", ["transformers", "open_clip"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_matches_transformers(loaded, family, layout):
    outputs, preprocessing, expected = loaded
    for name in OUTPUTS:
        ours, reference = outputs[f"{family}.{layout}.{name}"], expected[family][name]
        error = np.abs(ours - reference).max() / np.abs(reference).max()
        assert error <= RELATIVE_TOLERANCE, f"{family} {layout} {name}: relative max error {error:.2e}"
    assert preprocessing[f"{family}.{layout}"] == {"mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bicubic"}


def test_openai_defaults_would_be_wrong(loaded):
    # The check above can fail: QuickGELU and 64-wide heads (what a config-less load would guess) differ.
    import keras_clip
    from tests.helpers.transformers_reference import hf_to_openai

    transformers_config, _ = family_configs("laion2b_vit_h14")
    model = reference_model(transformers_config, seed=sorted(FAMILIES).index("laion2b_vit_h14"))
    state_dict = hf_to_openai({key: value.detach().numpy() for key, value in model.state_dict().items()})
    guessed = keras_clip.build_model(state_dict)
    images = random_images(2, RESOLUTION, seed=3)
    reference = loaded[2]["laion2b_vit_h14"]["image_features"]
    error = np.abs(guessed.encode_image(images).numpy() - reference).max() / np.abs(reference).max()
    assert error > 100 * RELATIVE_TOLERANCE


def test_configs_translate_to_the_same_architecture():
    for family in FAMILIES:
        transformers_config, model_cfg = family_configs(family)
        from_transformers = transformers_architecture(transformers_config)
        from_open_clip = open_clip_architecture(model_cfg)
        for key in ("vision_heads", "vision_mlp_width", "transformer_mlp_width", "activation", "embed_dim"):
            assert from_transformers[key] == from_open_clip[key], (family, key)
