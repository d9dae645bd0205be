"""`keras_clip.load` on every supported file format, in a process where `import torch` fails.

Checkpoints of random-weight reference models are written with PyTorch (test-only) and OpenAI's
code; a torch-free subprocess loads each twice (converting, then from the cache) and computes
the embeddings; they must match OpenAI's reference outputs within the model core's tolerance:
max |ours - reference| <= 1e-4 * max |reference|.
"""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import keras_clip
from keras_clip.checkpoints import load as load_module
from keras_clip.checkpoints.download import file_sha256
from keras_clip.checkpoints.keras_files import save_model_file, save_weights_with_config
from keras_clip.checkpoints.load import checkpoint_format, load_model
from keras_clip.errors import CacheFolderError, CheckpointError
from keras_clip.utils.atomic_files import temporary_name
from tests.helpers import checkpoint_files
from tests.helpers.memory import mapped_files, tensor_address
from tests.helpers.model_inputs import random_images, random_tokens
from tests.helpers.openai_reference import reference_outputs

RELATIVE_TOLERANCE = 1e-4
OUTPUTS = ("image_features", "text_features", "logits_per_image")

LOAD_SCRIPT = """
import json
import numpy as np
from keras_clip.checkpoints.load import load_model

job = json.load(open({job!r}))
inputs = np.load(job["inputs"])
results = {{}}
for label, path in job["files"].items():
    models = [load_model(path, cache_dir=job["cache"]) for attempt in ("cold", "warm")]
    for attempt, model in zip(("cold", "warm"), models):
        images, tokens = inputs[label + ".images"], inputs[label + ".tokens"]
        results[f"{{label}}.{{attempt}}.image_features"] = model.encode_image(images).numpy()
        results[f"{{label}}.{{attempt}}.text_features"] = model.encode_text(tokens).numpy()
        results[f"{{label}}.{{attempt}}.logits_per_image"] = model({{"images": images, "tokens": tokens}})[0].numpy()
np.savez(job["outputs"], **results)
# The loads built models without random initialisation: Keras' random ops must still work.
import keras
assert keras.random.normal((3,)).shape == (3,)
assert keras.layers.Dropout(0.5)(np.ones((2, 4)), training=True).shape == (2, 4)
try:
    from keras_clip.image.preprocessing import ImagePreprocessor
except ImportError:
    print("PREPROCESSING: not importable")
else:
    from keras_clip.checkpoints.load import load
    model, preprocess = load(job["files"][job["preprocess_label"]], cache_dir=job["cache"])
    assert isinstance(preprocess, ImagePreprocessor), type(preprocess)
    assert preprocess.image_resolution == model.image_resolution
    print("PREPROCESSING: checked")
"""


def _write_all_formats(folder, label, config, seed, with_hf):
    """Every supported file of one random reference model, and its reference outputs."""
    reference, state_dict = checkpoint_files.reference_state_dict(config, seed)
    files = {
        f"{label}.torchscript_fp16_cuda": checkpoint_files.write_torchscript(
            str(folder / f"{label}.pt"), config, state_dict, location="cuda:0"
        ),
        f"{label}.torch_save": checkpoint_files.write_torch_state_dict(str(folder / f"{label}.pth"), state_dict),
        f"{label}.safetensors": checkpoint_files.write_safetensors(str(folder / f"{label}.safetensors"), state_dict),
    }
    if with_hf:
        files[f"{label}.hf_safetensors"] = checkpoint_files.write_safetensors(
            str(folder / f"{label}_hf.safetensors"), state_dict, naming="hf"
        )
        files[f"{label}.hf_bin"] = checkpoint_files.write_torch_state_dict(
            str(folder / f"{label}_pytorch_model.bin"), checkpoint_files.openai_to_hf(state_dict), layouts=False
        )
    model = keras_clip.build_model(state_dict)
    files[f"{label}.keras"] = save_model_file(model, str(folder / f"{label}.keras"))
    files[f"{label}.weights_h5"] = save_weights_with_config(model, str(folder / f"{label}.weights.h5"))
    images = random_images(2, config["image_resolution"], seed=seed)
    tokens = random_tokens(3, seed=seed)
    return files, images, tokens, reference_outputs(reference, images, tokens)


def _assert_close(actual, expected, what):
    error = np.abs(actual - expected).max()
    bound = RELATIVE_TOLERANCE * np.abs(expected).max()
    assert error <= bound, f"{what}: max |difference| {error:.3g} > {bound:.3g}"


def _start_loading_without_torch(folder, models):
    """Starts loading every file of `models` ({label: (config, seed, with_hf)}) torch-free, in the background.

    Returns a function that waits for the loads and checks them against the reference; it returns
    (the files by label, the process's stdout).
    """
    files, inputs, expected = {}, {}, {}
    for label, (config, seed, with_hf) in models.items():
        model_files, images, tokens, outputs = _write_all_formats(folder, label, config, seed, with_hf)
        for file_label, path in model_files.items():
            files[file_label] = path
            inputs[file_label + ".images"], inputs[file_label + ".tokens"] = images, tokens
            expected[file_label] = outputs
    np.savez(folder / "inputs.npz", **inputs)
    job = {
        "files": files,
        "inputs": str(folder / "inputs.npz"),
        "outputs": str(folder / "outputs.npz"),
        "cache": str(folder / "cache"),
        "preprocess_label": next(iter(files)),
    }
    (folder / "job.json").write_text(json.dumps(job))
    process = checkpoint_files.without_torch_job(LOAD_SCRIPT.format(job=str(folder / "job.json")))
    process.start()

    def checked():
        result = process.result()
        assert result.returncode == 0, result.stderr[-5000:]
        outputs = np.load(folder / "outputs.npz")
        for file_label, reference in expected.items():
            for attempt in ("cold", "warm"):
                for name in OUTPUTS:
                    _assert_close(outputs[f"{file_label}.{attempt}.{name}"], reference[name],
                                  f"{file_label} {attempt} {name}")  # fmt: skip
        return files, result.stdout

    return checked


@pytest.fixture(scope="module")
def every_format_loaded(tmp_path_factory):
    """Both small models in every format, loaded torch-free in the background while the module's other tests run."""
    folder = tmp_path_factory.mktemp("every_format")
    models = {"vit": (checkpoint_files.SMALL_VIT, 10, True), "resnet": (checkpoint_files.SMALL_RESNET, 11, False)}
    return folder, _start_loading_without_torch(folder, models)


@pytest.fixture(scope="module", autouse=True)
def _start_every_format(request):
    if any(item.originalname == "test_every_format_matches_the_reference_without_torch"
           for item in request.session.items if item.module is request.module):  # fmt: skip
        request.getfixturevalue("every_format_loaded")


@pytest.mark.full_size
def test_full_size_vit_b_32_torchscript_without_torch(tmp_path):
    from tests.helpers.model_configs import architecture

    _start_loading_without_torch(tmp_path, {"vitb32": (architecture("ViT-B/32"), 12, False)})()


@pytest.fixture(scope="module")
def resnet_state_dict():
    return checkpoint_files.reference_state_dict(checkpoint_files.SMALL_RESNET, seed=13)[1]


def test_second_load_skips_conversion(tmp_path, resnet_state_dict, monkeypatch):
    path = checkpoint_files.write_torch_state_dict(str(tmp_path / "model.pt"), resnet_state_dict)
    cache = str(tmp_path / "cache")
    first = load_model(path, cache_dir=cache)
    copy = str(tmp_path / "renamed.bin")
    shutil.copy(path, copy)  # same bytes, same SHA256: same cache entry
    # A file not seen before is converted while it is hashed (no slower than looking the hash up first).
    second = load_model(copy, cache_dir=cache)
    assert len(list((tmp_path / "cache" / "converted").glob("*.safetensors"))) == 1

    def no_reading(*args, **kwargs):
        raise AssertionError("the checkpoint was read again")

    monkeypatch.setattr(load_module, "read_openai_state_dict", no_reading)
    for name in (path, copy):  # both hashes are remembered
        again = load_model(name, cache_dir=cache)
        for expected, model in ((first, second), (first, again)):
            for want, got in zip(expected.weights, model.weights):
                np.testing.assert_array_equal(got.numpy(), want.numpy())


def test_damaged_cache_entry_is_converted_again(tmp_path, resnet_state_dict):
    path = checkpoint_files.write_torch_state_dict(str(tmp_path / "model.pt"), resnet_state_dict)
    first = load_model(path, cache_dir=str(tmp_path / "cache"))
    (cached,) = (tmp_path / "cache" / "converted").glob("*.safetensors")
    checkpoint_files.truncate_file(str(cached), 0.5)
    with pytest.warns(UserWarning, match="Ignoring the cached conversion"):
        second = load_model(path, cache_dir=str(tmp_path / "cache"))
    for expected, actual in zip(first.weights, second.weights):
        np.testing.assert_array_equal(actual.numpy(), expected.numpy())


def test_truncated_zip_is_named(tmp_path, resnet_state_dict):
    path = checkpoint_files.write_torch_state_dict(str(tmp_path / "model.pt"), resnet_state_dict)
    checkpoint_files.truncate_file(path, 0.7)
    with pytest.raises(CheckpointError, match="truncated or corrupt zip archive"):
        load_model(path, cache_dir=str(tmp_path / "cache"))


def test_a_corrupt_storage_is_named_and_never_cached(tmp_path, resnet_state_dict):
    path = checkpoint_files.write_torch_state_dict(str(tmp_path / "model.pt"), resnet_state_dict)
    checkpoint_files.flip_storage_byte(path, key="3", position=0)
    for attempt in ("first", "second"):
        with pytest.raises(CheckpointError, match=r"storage record model/data/3 of .*model.pt is corrupt: its bytes "
                                                  r"have CRC-32"):  # fmt: skip
            load_model(path, cache_dir=str(tmp_path / "cache"))
    assert sorted(os.listdir(tmp_path / "cache" / "converted")) == ["hashes.json"]


def test_a_load_removes_what_killed_loads_left_in_the_cache(tmp_path, resnet_state_dict):
    path = checkpoint_files.write_torch_state_dict(str(tmp_path / "model.pt"), resnet_state_dict)
    cache = tmp_path / "cache"
    load_model(path, cache_dir=str(cache))  # converted and cached: the next load only reads the cache
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    converted = str(cache / "converted")
    debris = [  # as a load killed while writing the conversion, or a download, leaves them
        temporary_name(os.path.join(converted, "pending.safetensors"), ".safetensors"),
        temporary_name(str(cache / "ViT-B-32.pt")),
    ]
    debris = [name.replace(f".{os.getpid()}-", f".{dead.pid}-") for name in debris]
    writing = temporary_name(os.path.join(converted, "pending.safetensors"), ".safetensors")  # a live writer's
    for name in debris + [writing]:
        with open(name, "wb") as file:
            file.write(b"\0" * 1000)
    load_model(path, cache_dir=str(cache))
    assert not any(os.path.exists(name) for name in debris)
    assert os.path.exists(writing)


def test_a_cache_folder_that_is_a_file_is_named(tmp_path, resnet_state_dict, monkeypatch):
    path = checkpoint_files.write_torch_state_dict(str(tmp_path / "model.pt"), resnet_state_dict)
    not_a_folder = tmp_path / "cache.txt"
    not_a_folder.write_text("a file")
    monkeypatch.setenv("KERAS_CLIP_CACHE", str(not_a_folder))
    with pytest.raises(CacheFolderError, match=rf"^The keras_clip cache folder {not_a_folder} cannot be created: it "
                                               r"is a file; point \$KERAS_CLIP_CACHE at a folder$"):  # fmt: skip
        load_model(path)  # a local file: the cache holds its conversion
    with pytest.raises(CacheFolderError, match=rf"{not_a_folder} is a file; point cache_dir at a folder"):
        load_model(path, cache_dir=str(not_a_folder / "inside"))


def test_unknown_architecture_is_named(tmp_path):
    torch = pytest.importorskip("torch")
    path = str(tmp_path / "bert.pt")
    torch.save({"encoder.layer.0.weight": torch.ones(4, 4), "pooler.dense.bias": torch.ones(4)}, path)
    with pytest.raises(keras_clip.StateDictError, match="bert.pt: Unknown architecture"):
        load_model(path, cache_dir=str(tmp_path / "cache"))


def test_missing_key_is_named(tmp_path, resnet_state_dict):
    state_dict = dict(resnet_state_dict)
    del state_dict["visual.attnpool.k_proj.bias"]
    path = checkpoint_files.write_safetensors(str(tmp_path / "model.safetensors"), state_dict)
    with pytest.raises(keras_clip.StateDictError, match=r"missing keys \['visual.attnpool.k_proj.bias'\]"):
        load_model(path, cache_dir=str(tmp_path / "cache"))
    assert not list((tmp_path / "cache").glob("converted/*.safetensors"))  # nothing cached


def test_misshapen_weight_leaves_no_cache_file(tmp_path, resnet_state_dict):
    state_dict = dict(resnet_state_dict)
    state_dict["transformer.resblocks.1.mlp.c_fc.weight"] = np.zeros((256, 32), np.float16)
    path = checkpoint_files.write_safetensors(str(tmp_path / "model.safetensors"), state_dict)
    with pytest.raises(keras_clip.StateDictError, match="model.safetensors: Shape mismatch"):
        load_model(path, cache_dir=str(tmp_path / "cache"))
    # The cache writer had started (the keys were right): its temporary file is gone too.
    assert sorted(os.listdir(tmp_path / "cache" / "converted")) == ["hashes.json"]


def test_formats_are_recognised_by_content(tmp_path, resnet_state_dict):
    pt = checkpoint_files.write_torch_state_dict(str(tmp_path / "model.pt"), resnet_state_dict)
    st = checkpoint_files.write_safetensors(str(tmp_path / "model.safetensors"), resnet_state_dict)
    misnamed = str(tmp_path / "weights.dat")
    shutil.copy(st, misnamed)
    assert [checkpoint_format(path) for path in (pt, st, misnamed)] == ["torch", "safetensors", "safetensors"]
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="not a supported checkpoint"):
        load_model(str(text))


def test_folder_without_checkpoint_is_named(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="folder without a checkpoint file; looked for open_clip_model"):
        load_model(str(tmp_path))


def test_unknown_name_or_missing_file(tmp_path):
    message = r"neither a released CLIP model .*OpenAI.s: RN50, .*ViT-L/14@336px.*nor an existing"
    with pytest.raises(ValueError, match=message):
        load_model("ViT-B/99", cache_dir=str(tmp_path))


def test_weights_file_without_architecture_is_named(tmp_path):
    model = keras_clip.CLIP(**checkpoint_files.SMALL_RESNET)
    path = str(tmp_path / "plain.weights.h5")
    model.save_weights(path)
    with pytest.raises(CheckpointError, match="does not record its CLIP architecture"):
        load_model(path)


def test_keras_file_of_another_model_is_named(tmp_path):
    import keras

    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    path = str(tmp_path / "other.keras")
    other.save(path)
    with pytest.raises(CheckpointError, match="holds a Sequential, not a keras_clip CLIP"):
        load_model(path)


def test_replaced_file_is_hashed_and_converted_again(tmp_path, resnet_state_dict):
    path = str(tmp_path / "model.pt")
    checkpoint_files.write_torch_state_dict(path, resnet_state_dict)
    load_model(path, cache_dir=str(tmp_path / "cache"))
    _, other_state_dict = checkpoint_files.reference_state_dict(checkpoint_files.SMALL_RESNET, seed=14)
    replacement = checkpoint_files.write_torch_state_dict(str(tmp_path / "new.pt"), other_state_dict)
    os.replace(replacement, path)
    reloaded = load_model(path, cache_dir=str(tmp_path / "cache"))
    expected = keras_clip.build_model(other_state_dict)
    for want, got in zip(expected.weights, reloaded.weights):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    assert len(list((tmp_path / "cache").glob("converted/*.safetensors"))) == 2


# Last in the module: the loads run in the background while the tests above do.
def test_every_format_matches_the_reference_without_torch(every_format_loaded):
    folder, checked = every_format_loaded
    files, stdout = checked()
    assert "PREPROCESSING:" in stdout
    # Converted formats were cached under their SHA256; our own Keras files need no conversion.
    converted = set(os.listdir(folder / "cache" / "converted")) - {"hashes.json"}
    expected = {
        file_sha256(path) + ".safetensors"
        for label, path in files.items()
        if not label.endswith((".keras", ".weights_h5"))
    }
    assert converted == expected


def test_max_pixels_travels_with_the_loaded_model(tmp_path):
    path = str(tmp_path / "tiny.keras")
    save_model_file(keras_clip.CLIP(**checkpoint_files.SMALL_VIT), path)
    model, preprocess = keras_clip.load(path, max_pixels=1000)
    assert preprocess.settings.max_pixels == model.preprocessing.max_pixels == 1000
    model, preprocess = keras_clip.load(path)
    assert preprocess.settings.max_pixels == model.preprocessing.max_pixels == 178_956_970


def test_a_warm_load_uses_the_cache_files_pages_privately(tmp_path, resnet_state_dict):
    path = checkpoint_files.write_torch_state_dict(str(tmp_path / "model.pt"), resnet_state_dict)
    cold = load_model(path, cache_dir=str(tmp_path / "cache"))
    (cached,) = (tmp_path / "cache" / "converted").glob("*.safetensors")
    cached_sha256 = file_sha256(str(cached))
    warm = load_model(path, cache_dir=str(tmp_path / "cache"))

    embedding = warm.text.token_embedding.embeddings  # 49408 rows: large enough to be mapped
    address = tensor_address(tf.convert_to_tensor(embedding))
    assert str(cached) in mapped_files(address), "the variable's memory is not the cache file's map"
    np.testing.assert_array_equal(embedding.numpy(), cold.text.token_embedding.embeddings.numpy())

    embedding.assign(np.zeros(embedding.shape, np.float32))  # written in this process's private copy only
    assert file_sha256(str(cached)) == cached_sha256
    again = load_model(path, cache_dir=str(tmp_path / "cache"))
    np.testing.assert_array_equal(again.text.token_embedding.embeddings.numpy(),
                                  cold.text.token_embedding.embeddings.numpy())  # fmt: skip
