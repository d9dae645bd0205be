"""A checkpoint's pickle can name only what tensors need: anything else is refused, never run."""

import builtins
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from keras_clip.checkpoints.torch_zip import read_torch_state_dict
from keras_clip.errors import CheckpointError, UnsafeCheckpointError
from tests.helpers import checkpoint_files
from tests.helpers import hostile_checkpoints as hostile


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "command_ran"


def test_the_payload_is_live_for_an_ordinary_unpickler(tmp_path, marker):
    # Without the restriction the file runs its command: what the tests below guard against.
    path = checkpoint_files.write_malicious_checkpoint(
        str(tmp_path / "evil.pt"), checkpoint_files.command_payload(f"touch {marker}")
    )
    with zipfile.ZipFile(path) as archive:
        data = archive.read("archive/data.pkl")
    subprocess.run([sys.executable, "-c", "import pickle, sys; pickle.loads(sys.stdin.buffer.read())"], input=data,
                   check=True)
    assert marker.exists()


def test_os_system_is_refused_and_never_runs(tmp_path, marker):
    path = checkpoint_files.write_malicious_checkpoint(
        str(tmp_path / "evil.pt"), checkpoint_files.command_payload(f"touch {marker}")
    )
    with pytest.raises(UnsafeCheckpointError, match=r"global posix\.system"):
        read_torch_state_dict(path)
    assert not marker.exists()


def test_keras_clip_load_refuses_it_without_torch(tmp_path, marker):
    path = checkpoint_files.write_malicious_checkpoint(
        str(tmp_path / "evil.pt"), checkpoint_files.command_payload(f"touch {marker}")
    )
    result = checkpoint_files.run_without_torch(
        f"""
        from keras_clip.errors import UnsafeCheckpointError
        from keras_clip.checkpoints.load import load_model
        try:
            load_model({path!r}, cache_dir={str(tmp_path / 'cache')!r})
        except UnsafeCheckpointError as error:
            print("REFUSED:", error)
        """
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "REFUSED:" in result.stdout and "posix.system" in result.stdout
    assert not marker.exists()


@pytest.mark.parametrize(
    "function, args, global_pattern",
    [
        (builtins.eval, ("__import__('os').system('true')",), r"builtins\.eval"),
        (builtins.exec, ("x = 1",), r"builtins\.exec"),
        (subprocess.Popen, (["true"],), r"subprocess\.Popen"),
        (getattr, ("", "join"), r"builtins\.getattr"),
        (zipfile.ZipFile, ("x.zip",), r"zipfile\.ZipFile"),
    ],
)
def test_any_global_outside_the_allow_list_is_refused(tmp_path, function, args, global_pattern):
    path = checkpoint_files.write_malicious_checkpoint(
        str(tmp_path / "evil.pt"), checkpoint_files._RunCommand(function, *args)
    )
    with pytest.raises(UnsafeCheckpointError, match="global " + global_pattern):
        read_torch_state_dict(path)


def test_payload_hidden_in_a_torchscript_record_is_refused(tmp_path, marker):
    # `__torch__.*` classes are accepted, but only as inert records: what they hold is still checked.
    payload = checkpoint_files.command_payload(f"touch {marker}")
    data = (
        b"\x80\x02c__torch__.model\nCLIP\n)\x81}X\x06\x00\x00\x00visual"
        + pickle.dumps(payload, protocol=2)[2:-1]
        + b"sb."
    )
    path = str(tmp_path / "script.pt")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("script/data.pkl", data)
        archive.writestr("script/code/__torch__/model.py", "class CLIP(Module):\n  pass\n")
    with pytest.raises(UnsafeCheckpointError, match=r"posix\.system"):
        read_torch_state_dict(path)
    assert not marker.exists()


def test_malformed_persistent_id_is_refused(tmp_path):
    data = b"\x80\x02}X\x01\x00\x00\x00w(X\x07\x00\x00\x00storageK\x01tQs."
    path = str(tmp_path / "odd.pt")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data)
    with pytest.raises(CheckpointError, match="unsupported persistent id"):
        read_torch_state_dict(path)


def _setting_attributes(target, state):
    """`{"x": target}` after BUILD sets `state` on it."""
    return b"".join([hostile.PROTO_2, hostile.EMPTY_DICT, hostile.text("x"), *target, *state, hostile.BUILD,
                     hostile.SETITEM, hostile.STOP])  # fmt: skip


ATTRIBUTE_STATE = [hostile.EMPTY_DICT, hostile.text("x"), hostile.integer(1), hostile.SETITEM]


@pytest.mark.parametrize(
    "target, state, refusal",
    [
        # Without the seal, the unpickler's own function (shared by every later load) would get the attribute.
        ([hostile.global_name("torch._utils", "_rebuild_parameter")], ATTRIBUTE_STATE,
         "sets attributes on torch._utils._rebuild_parameter"),
        ([hostile.global_name("torch", "FloatStorage")], ATTRIBUTE_STATE, "sets attributes on"),
    ],
)
def test_build_cannot_alter_what_the_unpickler_hands_out(tmp_path, target, state, refusal):
    path = hostile.write_archive(str(tmp_path / "build.pt"), _setting_attributes(target, state))
    with pytest.raises(UnsafeCheckpointError, match=refusal):
        read_torch_state_dict(path)


def test_build_cannot_reshape_a_tensor(tmp_path):
    # Without the seal the record would describe a 100,000 x 100,000 array of its one stored float (40 GB).
    data = hostile.reshaped_tensor_pickle()
    path = hostile.write_archive(str(tmp_path / "reshaped.pt"), data, hostile.one_float_storage())
    with pytest.raises(UnsafeCheckpointError, match="sets attributes on TensorRecord"):
        read_torch_state_dict(path)


def test_a_view_describing_more_than_the_file_is_refused(tmp_path):
    data = hostile.repeating_view_pickle()
    path = hostile.write_archive(str(tmp_path / "repeated.pt"), data, hostile.one_float_storage())
    with pytest.raises(UnsafeCheckpointError, match=r"size \(100000, 100000\) describes 40,000,000,000 bytes, more "
                                                    r"than the file's"):  # fmt: skip
        read_torch_state_dict(path)


def test_a_valid_hand_written_checkpoint_loads(tmp_path):
    # The hand-written opcodes of tests/helpers/hostile_checkpoints.py describe real tensors correctly.
    path = hostile.write_archive(str(tmp_path / "small.pt"), hostile.small_state_dict_pickle(),
                                 hostile.six_float_storage())  # fmt: skip
    np.testing.assert_array_equal(np.asarray(read_torch_state_dict(path)["weight"]), [[1, 2, 3], [4, 5, 6]])
