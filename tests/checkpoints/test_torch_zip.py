"""The torch-free reader of PyTorch zip archives against what PyTorch itself reads back."""

import collections
import io
import os
import zipfile

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from keras_clip.checkpoints.stored_array import StoredArray
from keras_clip.checkpoints.torch_zip import TorchArchive, read_torch_state_dict
from keras_clip.errors import CheckpointError
from tests.helpers import checkpoint_files
from tests.helpers.fuzzing import fuzz_settings, mutated_bytes
from tests.helpers.memory import PeakMemory

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def vit_state_dict():
    return checkpoint_files.reference_state_dict(checkpoint_files.SMALL_VIT, seed=1)[1]


@pytest.fixture(scope="module")
def torchscript_file(tmp_path_factory, vit_state_dict):
    path = str(tmp_path_factory.mktemp("torchscript") / "ViT-small.pt")
    return checkpoint_files.write_torchscript(path, checkpoint_files.SMALL_VIT, vit_state_dict, location="cpu")


def _as_numpy(tensor):
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.numpy()


def test_torchscript_archive_matches_torch_jit_load(torchscript_file):
    expected = torch.jit.load(torchscript_file, map_location="cpu").state_dict()
    ours = read_torch_state_dict(torchscript_file)
    assert list(ours) == list(expected)
    for key, tensor in expected.items():
        array = np.asarray(ours[key])
        assert array.dtype == _as_numpy(tensor).dtype, key
        np.testing.assert_array_equal(array, _as_numpy(tensor), err_msg=key)
    assert np.asarray(ours["visual.conv1.weight"]).dtype == np.float16  # released layout: fp16 matrices
    assert np.asarray(ours["visual.ln_pre.weight"]).dtype == np.float32


def test_cuda_located_storages_read_the_same(torchscript_file, tmp_path):
    cuda_file = str(tmp_path / "cuda.pt")
    with open(torchscript_file, "rb") as source, open(cuda_file, "wb") as target:
        target.write(source.read())
    checkpoint_files.set_storage_location(cuda_file, "cuda:0")
    assert checkpoint_files.storage_locations(cuda_file) == {"cuda:0"}
    assert checkpoint_files.storage_locations(torchscript_file) == {"cpu"}
    on_cpu, on_cuda = read_torch_state_dict(torchscript_file), read_torch_state_dict(cuda_file)
    for key in on_cpu:
        np.testing.assert_array_equal(np.asarray(on_cuda[key]), np.asarray(on_cpu[key]), err_msg=key)


def test_traced_constants_are_not_parameters(torchscript_file):
    # The attention masks of the text tower are traced constants (constants.pkl), not state.
    keys = read_torch_state_dict(torchscript_file)
    assert not any("attn_mask" in key for key in keys)
    assert TorchArchive(torchscript_file).is_torchscript


@pytest.mark.parametrize("dtype", [None, torch.bfloat16, torch.float64])
def test_torch_save_state_dict_with_views_matches_torch_load(tmp_path, vit_state_dict, dtype):
    path = checkpoint_files.write_torch_state_dict(str(tmp_path / "model.pth"), vit_state_dict, dtype=dtype)
    expected = torch.load(path, weights_only=True)
    assert not expected["positional_embedding"].is_contiguous()  # the writer's layouts are really exercised
    assert expected["visual.class_embedding"].storage_offset() == 5
    ours = read_torch_state_dict(path)
    assert set(ours) == set(expected)
    for key, tensor in expected.items():
        np.testing.assert_array_equal(np.asarray(ours[key]), _as_numpy(tensor), err_msg=key)


def test_integer_boolean_and_shared_storages(tmp_path):
    base = torch.arange(24, dtype=torch.int64).reshape(4, 6)
    tensors = {
        "long": base,
        "shared_column": base[:, 2],  # strided view into the same storage, offset 2
        "permuted": base.reshape(2, 3, 4).permute(2, 0, 1),
        "int32": torch.tensor([1, -2, 3], dtype=torch.int32),
        "bool": torch.tensor([True, False, True]),
        "uint8": torch.tensor([0, 255], dtype=torch.uint8),
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 3),
    }
    path = str(tmp_path / "mixed.pt")
    torch.save(tensors, path)
    ours = read_torch_state_dict(path)
    for key, tensor in tensors.items():
        array = np.asarray(ours[key])
        np.testing.assert_array_equal(array, tensor.numpy(), err_msg=key)
        assert array.dtype == tensor.numpy().dtype and array.shape == tuple(tensor.shape)


def test_values_are_read_only_when_used(tmp_path):
    path = str(tmp_path / "lazy.pt")
    torch.save({"weight": torch.ones(3, 2, dtype=torch.float16)}, path)
    stored = read_torch_state_dict(path)["weight"]
    assert isinstance(stored, StoredArray)
    assert stored.shape == (3, 2) and stored.dtype == np.float16
    assert np.asarray(stored, dtype=np.float32).dtype == np.float32


def test_wrapped_training_checkpoint_and_dataparallel_prefix(tmp_path):
    path = str(tmp_path / "epoch_3.pt")
    weight = torch.randn(4, 4)
    torch.save({"epoch": 3, "name": "run", "state_dict": {"module.visual.proj": weight}}, path)
    ours = read_torch_state_dict(path)
    assert list(ours) == ["visual.proj"]
    np.testing.assert_array_equal(np.asarray(ours["visual.proj"]), weight.numpy())


def test_truncated_archive_is_named(torchscript_file, tmp_path):
    path = str(tmp_path / "truncated.pt")
    with open(torchscript_file, "rb") as source, open(path, "wb") as target:
        target.write(source.read())
    checkpoint_files.truncate_file(path, 0.6)
    with pytest.raises(CheckpointError, match="truncated or corrupt zip archive"):
        read_torch_state_dict(path)


def test_not_a_zip_and_legacy_format_are_named(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="not a zip archive"):
        read_torch_state_dict(str(text))
    legacy = str(tmp_path / "legacy.pt")
    torch.save({"weight": torch.ones(2)}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="legacy torch.save format"):
        read_torch_state_dict(legacy)


def test_missing_or_short_storage_is_named(tmp_path):
    path = str(tmp_path / "model.pt")
    torch.save({"weight": torch.ones(64)}, path)
    short = str(tmp_path / "short.pt")
    missing = str(tmp_path / "missing.pt")
    for target, change in ((short, lambda data: data[:10]), (missing, lambda data: None)):
        with open(path, "rb") as source, open(target, "wb") as copy:
            copy.write(source.read())
        checkpoint_files.rewrite_archive(target, lambda name, data: change(data) if "/data/" in name else data)
    with pytest.raises(CheckpointError, match=r"storage data/0 is truncated: 10 bytes"):
        read_torch_state_dict(short)
    with pytest.raises(CheckpointError, match=r"storage data/0 is missing"):
        read_torch_state_dict(missing)


def test_tensor_reaching_past_its_storage_is_refused(tmp_path):
    # A hand-made record whose size claims more elements than its storage holds: reading it
    # blindly with as_strided would read memory outside the file's bytes.
    path = str(tmp_path / "model.pt")
    torch.save({"weight": torch.ones(4)}, path)

    def enlarge(name, data):
        if name.endswith("data.pkl"):
            return data.replace(b"K\x04\x85", b"K\x40\x85")  # size (4,) -> (64,)
        return data

    checkpoint_files.rewrite_archive(path, enlarge)
    with pytest.raises(CheckpointError, match="reaches past the end of storage data/0"):
        read_torch_state_dict(path)


def test_archive_without_tensors_is_named(tmp_path):
    path = str(tmp_path / "config.pt")
    torch.save({"epoch": 3}, path)
    with pytest.raises(CheckpointError, match="no tensors found"):
        read_torch_state_dict(path)


def test_zip_without_data_pickle_is_named(tmp_path):
    path = str(tmp_path / "other.zip")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hi")
    with pytest.raises(CheckpointError, match="no <name>/data.pkl"):
        read_torch_state_dict(path)


def test_a_flipped_byte_in_a_storage_is_named_when_read(tmp_path):
    path = str(tmp_path / "model.pt")
    torch.save({"first": torch.arange(64, dtype=torch.float32), "second": torch.ones(8)}, path)
    checkpoint_files.flip_storage_byte(path, key="0", position=100)
    tensors = read_torch_state_dict(path)  # nothing is read yet
    np.testing.assert_array_equal(np.asarray(tensors["second"]), np.ones(8))
    with pytest.raises(CheckpointError, match=r"model.pt is corrupt: its bytes have CRC-32 [0-9a-f]{8}, the archive "
                                              r"says [0-9a-f]{8}"):  # fmt: skip
        np.asarray(tensors["first"])
    with pytest.raises(CheckpointError, match=r"storage record model/data/0 of .*model.pt is corrupt"):
        np.asarray(read_torch_state_dict(path)["first"])  # and again: a failed check is not remembered as good


def test_the_whole_storage_record_is_checked_for_a_view_of_part_of_it(tmp_path):
    # A tensor that is a slice of a longer storage: the flipped byte lies outside the slice, and is still found.
    path = str(tmp_path / "view.pt")
    torch.save({"middle": torch.arange(20, dtype=torch.float32)[5:10]}, path)
    checkpoint_files.flip_storage_byte(path, key="0", position=4 * 15)
    with pytest.raises(CheckpointError, match="storage record view/data/0 .* is corrupt"):
        np.asarray(read_torch_state_dict(path)["middle"])


def test_views_of_a_checked_storage_read_correctly(tmp_path):
    path = str(tmp_path / "shared.pt")
    base = torch.arange(24, dtype=torch.float32)
    views = {"all": base, "part": base[3:9], "grid": base.view(4, 6).t(), "strided": base[::5]}
    torch.save(views, path)
    for order in (list(views), list(reversed(views))):  # checked by the first view read, whichever it is
        tensors = read_torch_state_dict(path)
        for name in order:
            np.testing.assert_array_equal(np.asarray(tensors[name]), views[name].numpy())


FUZZ_PEAK_MEMORY = 64 << 20  # the seed file is 2 KB; a reader that honours its limits stays far below


@pytest.fixture(scope="module")
def fuzz_seed(tmp_path_factory):
    """A small `torch.save` state dict: float16, int64 and bfloat16 tensors, a strided view, a shared storage."""
    path = str(tmp_path_factory.mktemp("fuzz") / "seed.pt")
    base = torch.arange(12, dtype=torch.float32)
    tensors = {"weight": torch.ones(3, 4, dtype=torch.float16), "ids": torch.arange(5),
               "transposed": base.view(3, 4).t(), "part": base[2:6], "half": torch.zeros(2, dtype=torch.bfloat16)}
    torch.save(tensors, path)
    with open(path, "rb") as file:
        data = file.read()
    with zipfile.ZipFile(path) as archive:
        records = [(info.filename, archive.read(info)) for info in archive.infolist()]
    return data, records


@st.composite
def fuzzed_archives(draw, seed):
    """The seed archive's bytes mutated, or rebuilt (valid zip, valid CRCs) with its pickle mutated."""
    data, records = seed
    if draw(st.booleans()):
        return draw(mutated_bytes(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, content in records:
            archive.writestr(name, draw(mutated_bytes(content)) if name.endswith("data.pkl") else content)
    return buffer.getvalue()


def _write_new_file(path, data):
    if os.path.exists(path):
        os.remove(path)  # overwriting a file in place makes ext4 flush it on close: ~2 ms per example
    with open(path, "wb") as file:
        file.write(data)


@pytest.mark.fuzz
def test_fuzzed_archives_load_or_raise_our_error_in_bounded_memory(fuzz_seed, tmp_path):
    path = str(tmp_path / "fuzzed.pt")
    outcomes = collections.Counter()

    @fuzz_settings()
    @given(fuzzed_archives(fuzz_seed))
    def read_fuzzed(data):
        _write_new_file(path, data)
        with PeakMemory() as memory:
            try:
                arrays = [np.asarray(value) for value in read_torch_state_dict(path).values()]
                outcomes[f"loaded {len(arrays)} tensors"] += 1
            except CheckpointError as error:
                outcomes[type(error).__name__] += 1
        assert memory.peak < FUZZ_PEAK_MEMORY, f"{memory.peak / 2**20:.0f} MB for {len(data)} bytes"

    read_fuzzed()
    # The inputs reach past the zip layer: some load, some are refused by the pickle checks.
    assert outcomes["CheckpointError"] > 0 and outcomes["UnsafeCheckpointError"] + sum(
        count for outcome, count in outcomes.items() if outcome.startswith("loaded")) > 0, outcomes
