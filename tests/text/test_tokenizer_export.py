"""The tokenizer inside an exported SavedModel: same ids in a fresh process, only servable ops."""

import json
import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from keras_clip.text.tokenizer import Tokenizer
from tests.helpers.background import Job
from tests.helpers.tokenizer_corpus import build_corpus
from tests.helpers.tokenizer_reference import mojibake_repair_changes, reference_tokenize

# Every op type the exported graph may hold. Core TensorFlow ops (checked below to be registered by
# `import tensorflow` alone) ...
CORE_OPS = {
    "Add", "AddV2", "All", "Any", "ArgMin", "Assert", "BitwiseOr", "BroadcastTo", "Cast", "ConcatV2", "Const",
    "Cumsum", "DecodeRaw", "Equal", "ExpandDims", "Fill", "FloorMod", "GatherNd", "GatherV2", "Greater",
    "GreaterEqual", "HashTableV2", "Identity", "If", "Less", "LessEqual", "LogicalAnd", "LogicalNot", "LogicalOr",
    "LookupTableExportV2", "LookupTableFindV2", "LookupTableImportV2", "LookupTableInsertV2", "LookupTableSizeV2",
    "LowerBound", "Max", "Maximum", "MergeV2Checkpoints", "Minimum", "Mul", "MutableHashTableV2", "NoOp",
    "NotEqual", "OnesLike", "Pack", "PartitionedCall", "Placeholder", "Pow", "Prod", "Range", "Reshape",
    "RestoreV2", "SaveV2", "ScatterNd", "Select", "SelectV2", "Shape", "ShardedFilename", "Size", "Squeeze",
    "StatefulPartitionedCall", "StaticRegexFullMatch", "StaticRegexReplace", "StridedSlice", "StringJoin",
    "StringLength", "StringLower", "StringSplitV2", "StringStrip", "StringToHashBucketFast", "Sub", "Substr", "Sum",
    "TensorScatterUpdate", "Tile", "UnicodeDecode", "UnicodeEncode", "UnicodeTranscode", "Unique",
    "UnsortedSegmentJoin", "UnsortedSegmentMin", "UnsortedSegmentSum", "UpperBound", "Where", "While", "ZerosLike",
}
# ... and the TF Text ops that stock tensorflow_model_server links in (its tensorflow_text:ops_lib).
TF_TEXT_OPS = {"NormalizeUTF8"}

_RELOAD_SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf
import tensorflow_text  # registers NormalizeUTF8, as tensorflow_model_server does
export_dir, texts_path, out_path, endpoint = sys.argv[1:]
assert not any(name.split(".")[0] == "keras_clip" for name in sys.modules), "keras_clip was imported"
texts = json.load(open(texts_path, encoding="utf-8"))
loaded = tf.saved_model.load(export_dir)
if endpoint == "serving_default":
    run = lambda batch: loaded.signatures["serving_default"](texts=batch)["tokens"]
else:
    run = getattr(loaded, endpoint)
ids = np.concatenate([run(tf.constant(texts[i:i + 200])).numpy() for i in range(0, len(texts), 200)])
np.save(out_path, ids)
if endpoint == "serving_default":
    decoded = loaded.signatures["detokenize"](ids=tf.constant(ids))["texts"].numpy()
    json.dump([t.decode("utf-8") for t in decoded], open(out_path + ".json", "w", encoding="utf-8"))
    try:
        loaded.signatures["strict"](texts=tf.constant(texts[-1:]))
        raise SystemExit("truncate=False accepted a text over the context length")
    except tf.errors.InvalidArgumentError as error:
        assert "too long for context length 77" in str(error), error
"""


@pytest.fixture(scope="module")
def texts():
    corpus = build_corpus()
    return [t for t in corpus[::8] if not mojibake_repair_changes(t)] + ["a photo of a cat " * 40]


def _export_module(directory):
    module = tf.Module()
    module.tokenizer = Tokenizer()
    module.strict_tokenizer = Tokenizer(truncate=False)
    texts = tf.TensorSpec([None], tf.string)
    signatures = {
        "serving_default": tf.function(lambda texts: {"tokens": module.tokenizer(texts)}, input_signature=[texts]),
        "strict": tf.function(lambda texts: {"tokens": module.strict_tokenizer(texts)}, input_signature=[texts]),
        "detokenize": tf.function(
            lambda ids: {"texts": module.tokenizer.detokenize(ids)},
            input_signature=[tf.TensorSpec([None, 77], tf.int32)],
        ),
    }
    path = os.path.join(directory, "module")
    tf.saved_model.save(module, path, signatures=signatures)
    return path, "serving_default"


def _export_keras(directory):
    inputs = keras.Input(shape=(), dtype="string", name="texts")
    model = keras.Model(inputs, Tokenizer()(inputs))
    path = os.path.join(directory, "keras")
    model.export(path, format="tf_saved_model", verbose=False)
    return path, "serve"


def _reload_job(export_dir, endpoint, texts, directory):
    """A fresh process (tests/helpers/background.py Job) tokenizing `texts` with the export; see `_reloaded_ids`."""
    texts_path = os.path.join(directory, "texts.json")
    out_path = os.path.join(directory, f"{endpoint}.npy")
    with open(texts_path, "w", encoding="utf-8") as handle:
        json.dump(texts, handle)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH="")
    arguments = [sys.executable, "-c", _RELOAD_SCRIPT, export_dir, texts_path, out_path, endpoint]
    job = Job(arguments, cwd=directory, env=env)
    job.out_path = out_path
    return job


def _reloaded_ids(job):
    result = job.result(600)
    assert result.returncode == 0, result.stderr[-3000:]
    return np.load(job.out_path)


EXPORTS = {"tf.Module": _export_module, "keras.export": _export_keras}


@pytest.fixture(scope="module")
def reloads(texts, tmp_path_factory):
    """{export name: (export dir, endpoint, fresh-process job)}: both exports are written; a job runs when its
    test reads it."""
    exported = {}
    for name, export in EXPORTS.items():
        directory = str(tmp_path_factory.mktemp("tokenizer_export"))
        export_dir, endpoint = export(directory)
        exported[name] = export_dir, endpoint, _reload_job(export_dir, endpoint, texts, directory)
    yield exported
    for _, _, job in exported.values():
        job.stop()


def _op_types(export_dir):
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as handle:
        saved_model.ParseFromString(handle.read())
    ops = set()
    for graph in saved_model.meta_graphs:
        ops |= {node.op for node in graph.graph_def.node}
        ops |= {node.op for function in graph.graph_def.library.function for node in function.node_def}
    return ops


# The tf.Module export's fresh-process reload is a full_size check (11 s of the default run): the default run
# reloads the keras.export one here, and the classifier SavedModel, tokenizer inside, in tests/serving.
@pytest.mark.parametrize("export", [pytest.param("tf.Module", marks=pytest.mark.full_size), "keras.export"])
def test_saved_model_reloads_in_fresh_process_with_same_ids(export, texts, reloads):
    export_dir, endpoint, job = reloads[export]
    ids = _reloaded_ids(job)
    np.testing.assert_array_equal(ids, reference_tokenize(texts))
    if endpoint == "serving_default":
        with open(job.out_path + ".json", encoding="utf-8") as handle:
            decoded = json.load(handle)
        assert decoded == [t.decode("utf-8") for t in Tokenizer().detokenize(ids).numpy()]

    ops = _op_types(export_dir)
    unexpected = ops - CORE_OPS - TF_TEXT_OPS
    assert not unexpected, f"ops outside the TF Serving allow-list: {sorted(unexpected)}"
    assert ops & TF_TEXT_OPS == TF_TEXT_OPS


# A fresh TensorFlow's registry, read in the background from the start of the run.
REGISTRY_SCRIPT = (
    "import json, sys\n"
    "import tensorflow as tf\n"
    "from tensorflow.python.framework import op_def_registry\n"
    "names = json.loads(sys.argv[1])\n"
    "print(json.dumps([n for n in names if op_def_registry.get(n) is None]))\n"
)
REGISTRY = Job([sys.executable, "-c", REGISTRY_SCRIPT, json.dumps(sorted(CORE_OPS | TF_TEXT_OPS))],
               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=""))


@pytest.mark.background(REGISTRY)
def test_allow_list_is_core_tensorflow_and_tf_text():
    """CORE_OPS are registered by `import tensorflow` alone; TF_TEXT_OPS only with tensorflow_text."""
    result = REGISTRY.result()
    assert result.returncode == 0, result.stderr[-3000:]
    missing = json.loads(result.stdout.strip().splitlines()[-1])
    assert missing == sorted(TF_TEXT_OPS), missing
