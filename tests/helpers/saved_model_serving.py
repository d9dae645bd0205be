"""Calls an exported SavedModel's signatures in a fresh Python process that imports only TensorFlow.

This is what a TensorFlow Serving deployment sees: the SavedModel alone, with core TensorFlow and the
TF Text ops `tensorflow_model_server` links in (only TF Text's normalize-ops kernel library is
loaded, not the `tensorflow_text` package), and neither keras nor keras_clip (both are made
unimportable). Requests go to the child as a pickle of numpy arrays; it answers with each call's
outputs (or its error) and the process's resident memory before and at its peak during each call.
"""

import os
import pickle
import sys

from tensorflow.core.protobuf import saved_model_pb2

from tests.helpers.background import Job

# Every op type an export may contain: core TensorFlow ops (a test checks `import tensorflow` alone
# registers each) ...
CORE_OPS = {
    "Abs", "Add", "AddV2", "All", "Any", "ArgMax", "ArgMin", "AsString", "Assert", "AssignVariableOp", "AvgPool",
    "BatchMatMulV2", "BiasAdd", "BitwiseAnd", "BitwiseOr", "BroadcastTo", "Cast", "Ceil", "ConcatV2", "Const",
    "Conv2D", "Cumsum", "DecodeBmp", "DecodeGif", "DecodeJpeg", "DecodePng", "DecodeRaw", "DecodeWebP",
    "DenseBincount", "DisableCopyOnRead", "DivNoNan", "EnsureShape", "Equal", "Exp", "ExpandDims", "Fill", "Floor",
    "FloorDiv", "FloorMod",
    "GatherNd", "GatherV2", "Greater", "GreaterEqual", "HashTableV2", "Identity", "If", "LeftShift", "Less",
    "LessEqual", "LogicalAnd", "LogicalNot", "LogicalOr", "LookupTableExportV2", "LookupTableFindV2",
    "LookupTableImportV2", "LookupTableInsertV2", "LookupTableSizeV2", "LowerBound", "MatMul", "Max", "Maximum",
    "Mean", "MergeV2Checkpoints", "Minimum", "Mul", "MutableHashTableV2", "Neg", "NoOp", "NotEqual", "OnesLike",
    "Pack", "Pad", "PartitionedCall", "Placeholder", "Pow", "Prod", "RaggedGather", "RaggedRange",
    "RaggedTensorToTensor", "Range", "ReadVariableOp", "RealDiv", "Relu", "Reshape", "RestoreV2", "ReverseV2",
    "RightShift", "Round", "Rsqrt", "SaveV2", "ScatterNd",
    "Select", "SelectV2", "Shape", "ShardedFilename", "Sigmoid", "Size", "Softmax", "Split", "Sqrt", "Square",
    "SquaredDifference", "Squeeze", "Tanh", "StatefulPartitionedCall", "StatelessIf", "StatelessWhile",
    "StaticRegexFullMatch", "StaticRegexReplace", "StopGradient", "StridedSlice", "StringJoin", "StringLength",
    "StringLower", "StringSplit", "StringSplitV2", "StringStrip", "StringToHashBucketFast", "Sub", "Substr", "Sum",
    "TensorListConcatV2", "TensorListFromTensor", "TensorListGetItem", "TensorListReserve", "TensorListSetItem",
    "TensorListStack", "TensorScatterUpdate", "Tile", "TopKV2", "Transpose", "UnicodeDecode", "UnicodeEncode",
    "UnicodeTranscode", "Unique", "UnsortedSegmentJoin", "UnsortedSegmentMin", "UnsortedSegmentSum", "UpperBound",
    "VarHandleOp", "VarIsInitializedOp", "Where", "While", "ZerosLike"
}  # fmt: skip
# ... with the image decoding's: libjpeg's header reader, and the one-element tf.data pipelines that catch a
# decoder's error in the graph (keras_clip/utils/graph_attempts.py) ...
CORE_OPS |= {
    "Case", "ConcatenateDataset", "DatasetToSingleElement", "ExtractJpegShape", "IgnoreErrorsDataset", "MapDataset",
    "OptionsDataset", "Slice", "StatelessCase", "TakeDataset", "TensorDataset",
}  # fmt: skip
# ... and the TF Text ops that stock tensorflow_model_server links in (SUPPORTED_TENSORFLOW_OPS in its
# model_servers/BUILD lists @org_tensorflow_text//tensorflow_text:ops_lib).
TF_TEXT_OPS = {"NormalizeUTF8", "SentencepieceOp", "SentencepieceTokenizeOp", "RegexSplitWithOffsets"}


_SERVE_SCRIPT = r"""
import importlib.machinery, os, pickle, sys

# `import tensorflow` would import keras.src.optimizers if it can (TF's lazy Keras hook), and
# `import tensorflow_text` imports keras: make both impossible, like a server without Python Keras.
for blocked in ("keras", "tf_keras", "keras_clip", "tensorflow_text"):
    sys.modules[blocked] = None
import numpy as np
import tensorflow as tf

# Only TF Text's kernel libraries of the ops we export (tensorflow_model_server links TF Text's ops in):
# NormalizeUTF8; SentencePiece and RegexSplitWithOffsets for SigLIP's tokenizer.
tf_text_dir = importlib.machinery.PathFinder.find_spec("tensorflow_text").submodule_search_locations[0]
for library in ("_normalize_ops.so", "_sentencepiece_tokenizer.so", "_regex_split_ops.so"):
    tf.load_op_library(os.path.join(tf_text_dir, "python", "ops", library))

export_dir, requests_path, answers_path = sys.argv[1:]


def memory_mb():
    # (resident set size now, its peak since the last reset), in MB
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def reset_peak():
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)


def load_with_tf2(export_dir):
    # tf.saved_model.load: the signatures as concrete functions, as a Python TF 2 program sees them.
    loaded = tf.saved_model.load(export_dir)

    def call(signature, inputs):
        outputs = loaded.signatures[signature](**{name: tf.constant(value) for name, value in inputs.items()})
        return {name: value.numpy() for name, value in outputs.items()}

    return sorted(loaded.signatures), call


def load_with_session(export_dir):
    # The SignatureDefs run in a Session, as tensorflow_model_server (and `saved_model_cli run`) does:
    # the graph's restore op fills the variables, requests feed and fetch the signature's tensor names.
    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph)
    with graph.as_default():
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], export_dir)
    signatures = meta_graph.signature_def

    def call(signature, inputs):
        definition = signatures[signature]
        feed = {definition.inputs[name].name: value for name, value in inputs.items()}
        fetch = {name: info.name for name, info in definition.outputs.items()}
        return session.run(fetch, feed)

    return sorted(name for name in signatures if not name.startswith("__")), call


with open(requests_path, "rb") as handle:
    requests, loaders = pickle.load(handle)
answers = {"rss_mb_after_import": memory_mb()[0]}
for loader in loaders:
    reset_peak()
    signatures, call = {"tf2": load_with_tf2, "session": load_with_session}[loader](export_dir)
    answer = {"signatures": signatures}
    answer["rss_mb_after_load"], answer["peak_rss_mb_of_load"] = memory_mb()
    calls = []
    for signature, inputs in requests:
        rss_before, _ = memory_mb()
        reset_peak()
        try:
            result = {"outputs": call(signature, inputs)}
        except tf.errors.OpError as error:
            result = {"error": type(error).__name__, "message": error.message}
        result["rss_mb_before"] = rss_before
        result["peak_rss_mb"] = memory_mb()[1]
        calls.append(result)
    answer["calls"] = calls
    answers[loader] = answer
answers["modules"] = sorted(
    name for name, module in sys.modules.items()
    if module is not None and name.split(".")[0] in ("keras", "tf_keras", "keras_clip", "tensorflow_text")
)
with open(answers_path, "wb") as handle:
    pickle.dump(answers, handle)
"""


def serve_in_fresh_process(export_dir, requests, work_dir, loaders=("tf2", "session"), timeout=600):
    """Runs `requests` against `export_dir` in a new Python process importing only tensorflow (+ TF Text's kernels).

    Args:
        export_dir: a SavedModel directory.
        requests: list of `(signature name, {input name: numpy array})`.
        work_dir: a directory for the request and answer files.
        loaders: how the SavedModel is loaded, in this order: "tf2" (`tf.saved_model.load`, signatures
            called as functions) and/or "session" (TF 1 loader and `Session.run` of the SignatureDefs'
            tensors, which is what tensorflow_model_server does).

    Returns:
        dict with "modules" (any keras / keras_clip / tensorflow_text modules imported), "rss_mb_after_import",
        and per loader: {"signatures": names, "rss_mb_after_load", "peak_rss_mb_of_load" (resident memory,
        MB), "calls": per request, {"outputs": {name: array}} or {"error": class name, "message": str},
        plus "rss_mb_before" (resident memory before the call) and "peak_rss_mb" (its peak during the call)}.
    """
    return served_answers(serving_job(export_dir, requests, work_dir, loaders), timeout)


def serving_job(export_dir, requests, work_dir, loaders=("tf2", "session")):
    """`serve_in_fresh_process` as a tests/helpers/background.py Job, to `start()` and read with `served_answers`."""
    requests_path = os.path.join(work_dir, "requests.pkl")
    answers_path = os.path.join(work_dir, "answers.pkl")
    with open(requests_path, "wb") as handle:
        pickle.dump((list(requests), list(loaders)), handle)
    # PYTHONPATH="" and cwd outside the repository: keras_clip cannot even be found, let alone imported.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH="")
    job = Job([sys.executable, "-c", _SERVE_SCRIPT, export_dir, requests_path, answers_path], cwd=work_dir, env=env)
    job.answers_path = answers_path
    return job


def served_answers(job, timeout=600):
    """The answers of a `serving_job`'s process (see `serve_in_fresh_process`)."""
    result = job.result(timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(job.answers_path, "rb") as handle:
        return pickle.load(handle)


def saved_model_cli_job(export_dir):
    """`saved_model_cli show --dir export_dir --all` as a tests/helpers/background.py Job."""
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    return Job([cli, "show", "--dir", export_dir, "--all"], env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))


def exported_op_types(export_dir):
    """{function or graph name: set of op types} over the SavedModel's graphs and their function libraries."""
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as handle:
        saved_model.ParseFromString(handle.read())
    op_types = {}
    for index, graph in enumerate(saved_model.meta_graphs):
        op_types[f"meta_graph_{index}"] = {node.op for node in graph.graph_def.node}
        for function in graph.graph_def.library.function:
            op_types[function.signature.name] = {node.op for node in function.node_def}
    return op_types


def saved_model_cli_signatures(export_dir, job=None):
    """Parses `saved_model_cli show --dir export_dir --all` (the TensorFlow CLI beside this Python), run by
    `job` (a started `saved_model_cli_job`) or now.

    Returns:
        {signature name: {"inputs": {name: (dtype, shape)}, "outputs": {name: (dtype, shape)}, "method": str}},
        with dtype like "DT_STRING" and shape as printed, e.g. "(-1, 77)".
    """
    result = (job or saved_model_cli_job(export_dir)).result(300)
    assert result.returncode == 0, result.stderr[-3000:]
    signatures, current, section, tensor = {}, None, None, None
    for line in result.stdout.splitlines():
        text = line.strip()
        if text.startswith("signature_def['"):
            current = signatures.setdefault(text.split("'")[1], {"inputs": {}, "outputs": {}, "method": None})
        elif current is None:
            continue
        elif text.startswith(("inputs['", "outputs['")):
            section, tensor = text.split("[")[0], text.split("'")[1]
            current[section][tensor] = [None, None]
        elif text.startswith("dtype:") and tensor is not None:
            current[section][tensor][0] = text.split(":", 1)[1].strip()
        elif text.startswith("shape:") and tensor is not None:
            current[section][tensor][1] = text.split(":", 1)[1].strip()
        elif text.startswith("Method name is:"):
            current["method"] = text.split(":", 1)[1].strip()
            current, tensor = None, None
    for signature in signatures.values():
        for section in ("inputs", "outputs"):
            signature[section] = {name: tuple(info) for name, info in signature[section].items()}
    return signatures
