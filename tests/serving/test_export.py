"""SavedModel export: every signature served from raw bytes and text by a TensorFlow-only process.

Each export is loaded in a fresh Python process where keras, keras_clip and the tensorflow_text
package cannot be imported (only TF Text's NormalizeUTF8 kernels are loaded, as tensorflow_model_server
links them in), and its outputs are compared with the eager Keras model's on the same requests.
"""

import base64
import importlib.util
import json
import os
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

import keras_clip.serving.export as export_module
from keras_clip.image.preprocessing import ImagePreprocessor
from keras_clip.models.clip import CLIP, create_model
from keras_clip.models.zero_shot import ZeroShotClassifier
from keras_clip.serving.export import export_saved_model
from keras_clip.text.tokenizer import tokenize
from tests.helpers import image_bombs, images
from tests.helpers.background import Job
from tests.helpers.saved_model_serving import (
    CORE_OPS, TF_TEXT_OPS, exported_op_types, saved_model_cli_job, saved_model_cli_signatures, served_answers,
    serving_job,
)
from tests.helpers.tiny_models import tiny_clip

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples")
TOLERANCE = 1e-5  # served outputs vs the eager model's (both float32, same graph ops, different fusion)
TOP_K = 3
DECODED_MB = 6000 * 4000 * 3 / 2**20  # one decoded 6000x4000 RGB photograph
CLASSNAMES = ["cat", "dog", "Chinese palace", "astronaut", "cup of coffee", "rocket", "crème brûlée"]
TEMPLATES = ["a photo of a {}.", "{}", "a blurry photo of the {}."]
CAPTIONS = [
    "a photo of a cat",
    "",
    "A PHOTO OF A DOG!",
    "café crème &amp; croissants 🥐",
    "東京の夜景",
    "  tabs\tand\nnew lines  ",
    "a very long caption that goes on " * 20,  # over 77 tokens: truncated, EOT kept last
]
CLIP_SIGNATURES = ["encode_image", "encode_pixels", "encode_text", "encode_tokens", "serving_default", "similarity"]



def _normalized(features):
    features = np.asarray(features, np.float64)
    return features / np.linalg.norm(features, axis=-1, keepdims=True)


def _photographs():
    """Real photographs as JPEG and PNG bytes, of different sizes and aspect ratios."""
    photos = images.photographs()
    return [
        images.encode(photos["china"], "jpeg"),
        images.encode(photos["astronaut"], "png"),
        images.encode(photos["chelsea"], "jpeg_progressive"),
        images.encode(np.ascontiguousarray(photos["rocket"][:, 170:470]), "png"),
    ]


class Export:
    """An exported model, its eager counterpart and the eager model's answers to the test requests."""

    def __init__(self, obj, export_dir):
        self.obj = obj
        start = time.perf_counter()
        export_saved_model(obj, export_dir, top_k=TOP_K)
        self.export_seconds = time.perf_counter() - start
        self.dir = export_dir
        self.model = obj if isinstance(obj, CLIP) else obj.clip_model
        self.image_bytes = np.array(_photographs(), dtype=object)
        self.texts = np.array([caption.encode("utf-8") for caption in CAPTIONS], dtype=object)
        self.pixels = ImagePreprocessor(self.model.image_resolution)(tf.constant(self.image_bytes)).numpy()
        self.tokens = tokenize(CAPTIONS, truncate=True)
        image_features = self.model.encode_image(self.pixels)
        text_features = self.model.encode_text(self.tokens)
        self.image_embeddings = _normalized(image_features)
        self.text_embeddings = _normalized(text_features)
        self.logits_per_image = np.asarray(self.model.logits(image_features, text_features)[0])
        if not isinstance(obj, CLIP):
            self.probabilities = np.asarray(obj(self.pixels))


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("exports")
    model = tiny_clip(seed=0)
    # The classifier's CLIP has OpenAI's 224-pixel input (tiny widths) so that it serves the large JPEG
    # with the preprocessing of a real model.
    classifier_clip = tiny_clip(seed=1, image_resolution=224, vision_patch_size=32)
    classifier = ZeroShotClassifier(classifier_clip, CLASSNAMES, templates=TEMPLATES, verbose=False)
    exports = {
        "clip": Export(model, str(root / "clip" / "1")),
        "classifier": Export(classifier, str(root / "classifier" / "1")),
    }
    print("\nexport seconds: " + ", ".join(f"{kind} {e.export_seconds:.1f}" for kind, e in exports.items()))
    return exports


@pytest.fixture(scope="module")
def loaded_classifier(exports):
    """The classifier's export loaded in this process by `tf.saved_model.load` (once: it takes seconds)."""
    return tf.saved_model.load(exports["classifier"].dir)


def _requests(export):
    """(signature, inputs, check) triples: check(answer) asserts on the served answer."""
    d = export.model.embed_dim
    r = export.model.image_resolution
    none = np.array([], dtype=object)

    def close(name, expected):
        def check(answer):
            assert "outputs" in answer, answer
            np.testing.assert_allclose(answer["outputs"][name], expected, atol=TOLERANCE, rtol=0)
        return check

    def shaped(**shapes):
        def check(answer):
            assert "outputs" in answer, answer
            assert {name: value.shape for name, value in answer["outputs"].items()} == shapes
        return check

    def decode_error(*phrases):
        def check(answer):
            assert answer.get("error") == "InvalidArgumentError", answer
            assert any(phrase in answer["message"] for phrase in phrases), answer["message"]
        return check

    jpeg, png = export.image_bytes[0], export.image_bytes[1]
    requests = [
        ("encode_image", {"image_bytes": export.image_bytes}, close("embeddings", export.image_embeddings)),
        ("encode_text", {"text": export.texts}, close("embeddings", export.text_embeddings)),
        ("encode_tokens", {"tokens": export.tokens}, close("embeddings", export.text_embeddings)),
        ("encode_pixels", {"pixels": export.pixels}, close("embeddings", export.image_embeddings)),
        ("similarity", {"image_bytes": export.image_bytes, "text": export.texts},
         close("logits_per_image", export.logits_per_image)),
        # Bad requests: garbage, a truncated JPEG, a truncated PNG; each followed by a good request.
        ("encode_image", {"image_bytes": np.array([jpeg, b"not an image"], dtype=object)},
         decode_error("Could not decode the image at index 1: ")),
        ("encode_image", {"image_bytes": export.image_bytes}, close("embeddings", export.image_embeddings)),
        ("encode_image", {"image_bytes": np.array([jpeg, jpeg[: len(jpeg) // 2]], dtype=object)},
         decode_error(f"Could not decode the image at index 1: its {len(jpeg) // 2} bytes are not a valid JPEG file")),
        ("similarity", {"image_bytes": np.array([png[: len(png) // 2]], dtype=object), "text": export.texts},
         decode_error(f"Could not decode the image at index 0: its {len(png) // 2} bytes are not a valid PNG file")),
        ("encode_image", {"image_bytes": np.array([jpeg, image_bombs.png_bomb(20000, 20000)], dtype=object)},
         decode_error("Could not decode the image at index 1: its 20000 x 20000 pixels exceed max_pixels")),
        ("similarity", {"image_bytes": export.image_bytes, "text": export.texts},
         close("logits_per_image", export.logits_per_image)),
        # Empty batches.
        ("encode_image", {"image_bytes": none}, shaped(embeddings=(0, d))),
        ("encode_text", {"text": none}, shaped(embeddings=(0, d))),
        ("encode_tokens", {"tokens": np.zeros((0, 77), np.int32)}, shaped(embeddings=(0, d))),
        ("encode_pixels", {"pixels": np.zeros((0, r, r, 3), np.float32)}, shaped(embeddings=(0, d))),
        ("similarity", {"image_bytes": none, "text": export.texts}, shaped(logits_per_image=(0, len(CAPTIONS)))),
        ("similarity", {"image_bytes": export.image_bytes, "text": none},
         shaped(logits_per_image=(len(export.image_bytes), 0))),
        ("similarity", {"image_bytes": none, "text": none}, shaped(logits_per_image=(0, 0))),
    ]
    if isinstance(export.obj, CLIP):
        requests.append(
            ("serving_default", {"image_bytes": export.image_bytes}, close("embeddings", export.image_embeddings))
        )
        return requests

    c = len(CLASSNAMES)
    order = np.argsort(-export.probabilities, axis=-1)[:, :TOP_K]

    def classified(answer):
        assert "outputs" in answer, answer
        outputs = answer["outputs"]
        np.testing.assert_allclose(outputs["probabilities"], export.probabilities, atol=TOLERANCE, rtol=0)
        np.testing.assert_allclose(
            outputs["top_probabilities"], np.take_along_axis(export.probabilities, order, axis=-1),
            atol=TOLERANCE, rtol=0,
        )
        labels = [[label.decode("utf-8") for label in row] for row in outputs["top_labels"]]
        assert labels == [[CLASSNAMES[j] for j in row] for row in order]

    for signature in ("classify", "serving_default"):
        requests += [
            (signature, {"image_bytes": export.image_bytes}, classified),
            (signature, {"image_bytes": np.array([b"\xff\xd8\xff" + b"\0" * 100], dtype=object)},
             decode_error("Could not decode the image at index 0: its JPEG header is corrupt or truncated")),
            (signature, {"image_bytes": export.image_bytes}, classified),
            (signature, {"image_bytes": none},
             shaped(probabilities=(0, c), top_labels=(0, TOP_K), top_probabilities=(0, TOP_K))),
        ]
    return requests


def test_outputs_are_l2_normalised_and_classes_travel_inside(exports, loaded_classifier):
    export, loaded = exports["classifier"], loaded_classifier
    for embeddings in (
        loaded.signatures["encode_text"](text=tf.constant(export.texts))["embeddings"],
        loaded.signatures["encode_image"](image_bytes=tf.constant(export.image_bytes))["embeddings"],
    ):
        np.testing.assert_allclose(np.linalg.norm(embeddings.numpy(), axis=-1), 1.0, atol=1e-6)
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(export.dir, "saved_model.pb"), "rb") as handle:
        saved_model.ParseFromString(handle.read())
    graph = saved_model.meta_graphs[0].graph_def
    string_constants = {
        tuple(node.attr["value"].tensor.string_val)
        for nodes in [graph.node] + [function.node_def for function in graph.library.function]
        for node in nodes
        if node.op == "Const" and node.attr["dtype"].type == tf.string.as_datatype_enum
    }
    assert tuple(name.encode("utf-8") for name in CLASSNAMES) in string_constants


@pytest.mark.parametrize("kind", ["clip", "classifier"])
def test_every_weight_is_saved_once(kind, exports):
    """The checkpoint holds the weights the signatures read, once (Keras' own `model.export` saves the
    weights its endpoints use twice: as Keras variables and as the tf.Variables the graph reads)."""
    export = exports[kind]
    reader = tf.train.load_checkpoint(os.path.join(export.dir, "variables", "variables"))
    shapes = reader.get_variable_to_shape_map()
    saved = sum(int(np.prod(shapes[name])) for name, dtype in reader.get_variable_to_dtype_map().items()
                if dtype == tf.float32)
    expected = export.model.count_params() + (0 if kind == "clip" else len(CLASSNAMES) * export.model.embed_dim)
    assert saved == expected


def _load_example_client():
    path = os.path.join(EXAMPLES, "serving", "client.py")
    spec = importlib.util.spec_from_file_location("serving_client", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _as_tensor(value):
    """A REST `inputs` value as TF Serving turns it into a tensor ({"b64": ...} -> bytes)."""
    return tf.constant([base64.b64decode(v["b64"]) if isinstance(v, dict) else v.encode("utf-8") for v in value])


def test_example_requests_get_the_documented_outputs(exports, loaded_classifier, tmp_path):
    """examples/serving: the request JSON file and the client's requests, as TF Serving would decode them."""
    export, loaded = exports["classifier"], loaded_classifier
    example = os.path.join(EXAMPLES, "serving", "classify_request.json")
    with open(example, encoding="utf-8") as handle:
        request = json.load(handle)
    outputs = loaded.signatures[request["signature_name"]](image_bytes=_as_tensor(request["inputs"]["image_bytes"]))
    assert {name: tuple(value.shape) for name, value in outputs.items()} == {
        "probabilities": (1, len(CLASSNAMES)), "top_labels": (1, TOP_K), "top_probabilities": (1, TOP_K)
    }

    client = _load_example_client()
    paths = []
    for index, data in enumerate(export.image_bytes[:2]):
        paths.append(str(tmp_path / f"photo{index}"))
        with open(paths[-1], "wb") as handle:
            handle.write(data)
    texts = CAPTIONS[:3]
    for signature, expected in (
        ("classify", {"probabilities": export.probabilities[:2]}),
        ("encode_image", {"embeddings": export.image_embeddings[:2]}),
        ("encode_text", {"embeddings": export.text_embeddings[:3]}),
        ("similarity", {"logits_per_image": export.logits_per_image[:2, :3]}),
    ):
        body = json.loads(json.dumps(client.build_request(signature, paths, texts)))
        assert body["signature_name"] == signature
        outputs = loaded.signatures[signature](**{name: _as_tensor(value) for name, value in body["inputs"].items()})
        for name, value in expected.items():
            np.testing.assert_allclose(outputs[name].numpy(), value, atol=TOLERANCE, rtol=0)


def _memory_report(answers, calls):
    loaded = answers["session"]
    parts = [f"RSS after import {answers['rss_mb_after_import']:.0f} MB, after load {loaded['rss_mb_after_load']:.0f}"
             f" MB (peak while loading {loaded['peak_rss_mb_of_load']:.0f} MB)"]
    for label, call in calls:
        parts.append(f"{label}: {call['rss_mb_before']:.0f} MB before, peak {call['peak_rss_mb']:.0f} MB "
                     f"(+{call['peak_rss_mb'] - call['rss_mb_before']:.0f} MB)")
    return "; ".join(parts)


def _large_jpegs_job(export_dir, signature, warm_up, large, count, work_dir):
    """A fresh process (Session, as TF Serving runs it) serving `count` copies of `large` in one request, after
    a small warm-up request: a tests/helpers/background.py Job to read with `_large_jpegs_served`."""
    requests = [
        (signature, {"image_bytes": warm_up}),
        (signature, {"image_bytes": np.array([large] * count, dtype=object)}),
    ]
    work_dir = os.path.join(work_dir, f"{count}_images")
    os.makedirs(work_dir)
    job = serving_job(export_dir, requests, work_dir, loaders=("session",))
    job.count = count
    return job


def _large_jpegs_served(job):
    """(answer, peak memory increase in MB, report) of a `_large_jpegs_job`."""
    answers = served_answers(job)
    warm, served = answers["session"]["calls"]
    report = _memory_report(answers, [("small image", warm), (f"{job.count} x 6000x4000 JPEG", served)])
    return served, served["peak_rss_mb"] - served["rss_mb_before"], report


def _serve_large_jpegs(export_dir, signature, warm_up, large, count, tmp_path):
    return _large_jpegs_served(_large_jpegs_job(export_dir, signature, warm_up, large, count, str(tmp_path)))


def _collected(request):
    """(test name, its "kind" parameter or None) of this module's collected tests."""
    return {
        (item.originalname, item.callspec.params.get("kind") if hasattr(item, "callspec") else None)
        for item in request.session.items
        if item.module is request.module
    }


@pytest.fixture(scope="module", autouse=True)
def fresh_processes(exports, request, tmp_path_factory):
    """The fresh-process jobs of this module's tests, {(what, kind or image count): job}. Those of collected
    tests start together before the module's first test and run beside the others; the rest run when read."""
    root = tmp_path_factory.mktemp("fresh_processes")
    collected = _collected(request)
    jobs, readers = {}, {}
    for kind, export in exports.items():
        os.makedirs(root / kind)
        requests = [(name, inputs) for name, inputs, _ in _requests(export)]
        jobs["serve", kind] = serving_job(export.dir, requests, str(root / kind))
        readers["serve", kind] = ("test_fresh_tensorflow_process_serves_every_signature_like_the_eager_model", kind)
        jobs["saved_model_cli", kind] = saved_model_cli_job(export.dir)
        readers["saved_model_cli", kind] = ("test_saved_model_cli_lists_every_signature_with_its_names", kind)
    classifier, large = exports["classifier"], images.large_jpeg(6000, 4000)
    for count in (1, 6):
        jobs["large", count] = _large_jpegs_job(classifier.dir, "classify", classifier.image_bytes[:1], large, count,
                                                str(root))  # fmt: skip
        readers["large", count] = ("test_large_jpeg_is_served_one_image_at_a_time_with_bounded_memory", None)
    for key, job in jobs.items():
        if readers[key] in collected:
            job.start()
    yield jobs
    for job in jobs.values():
        job.stop()


def test_exported_ops_are_core_tensorflow_or_tf_text_that_tf_serving_ships(exports, tmp_path):
    resnet = tiny_clip(seed=2, vision_layers=(1, 1, 1, 1), vision_width=8, vision_patch_size=None)
    resnet_dir = str(tmp_path / "resnet")
    export_saved_model(resnet, resnet_dir)
    seen = set()
    for export_dir in (exports["clip"].dir, exports["classifier"].dir, resnet_dir):
        for function, op_types in exported_op_types(export_dir).items():
            unexpected = op_types - CORE_OPS - TF_TEXT_OPS
            assert not unexpected, f"{export_dir}: {function} uses ops outside the allow-list: {sorted(unexpected)}"
            seen |= op_types
    assert seen & TF_TEXT_OPS == {"NormalizeUTF8"}  # SigLIP's: tests/serving/test_export_siglip.py
    assert {"DecodeJpeg", "DecodePng", "Conv2D", "AvgPool", "TopKV2", "NormalizeUTF8"} <= seen
    assert not seen & {"PyFunc", "EagerPyFunc", "PyFuncStateless"}


# A fresh TensorFlow's registry (keras and TF Text unimportable), read in the background from the start of the run.
REGISTRY_SCRIPT = (
    "import json, sys\n"
    "for blocked in ('keras', 'tf_keras', 'tensorflow_text'):\n"
    "    sys.modules[blocked] = None\n"
    "import tensorflow as tf\n"
    "from tensorflow.python.framework import op_def_registry\n"
    "print(json.dumps(sorted(n for n in json.loads(sys.argv[1]) if op_def_registry.get(n) is None)))\n"
)
REGISTRY = Job([sys.executable, "-c", REGISTRY_SCRIPT, json.dumps(sorted(CORE_OPS | TF_TEXT_OPS))],
               env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=""))


@pytest.mark.background(REGISTRY)
def test_allow_list_is_core_tensorflow_plus_tf_text():
    """CORE_OPS are registered by `import tensorflow` alone; TF_TEXT_OPS only once TF Text's kernels are loaded."""
    result = REGISTRY.result()
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == sorted(TF_TEXT_OPS)


# The classifier's export holds every signature of the CLIP export: its listing is checked in the default run,
# the CLIP export's in `make test-full` (a saved_model_cli process each).
@pytest.mark.parametrize("kind", [pytest.param("clip", marks=pytest.mark.full_size), "classifier"])
def test_saved_model_cli_lists_every_signature_with_its_names(kind, exports, fresh_processes):
    export = exports[kind]
    d, r, c = export.model.embed_dim, export.model.image_resolution, len(CLASSNAMES)
    embeddings = {"embeddings": ("DT_FLOAT", f"(-1, {d})")}
    image_bytes = {"image_bytes": ("DT_STRING", "(-1)")}
    classify = {
        "inputs": image_bytes,
        "outputs": {
            "probabilities": ("DT_FLOAT", f"(-1, {c})"),
            "top_labels": ("DT_STRING", f"(-1, {TOP_K})"),
            "top_probabilities": ("DT_FLOAT", f"(-1, {TOP_K})"),
        },
    }
    expected = {
        "encode_image": {"inputs": image_bytes, "outputs": embeddings},
        "encode_text": {"inputs": {"text": ("DT_STRING", "(-1)")}, "outputs": embeddings},
        "encode_tokens": {"inputs": {"tokens": ("DT_INT32", "(-1, 77)")}, "outputs": embeddings},
        "encode_pixels": {"inputs": {"pixels": ("DT_FLOAT", f"(-1, {r}, {r}, 3)")}, "outputs": embeddings},
        "similarity": {
            "inputs": {"image_bytes": ("DT_STRING", "(-1)"), "text": ("DT_STRING", "(-1)")},
            "outputs": {"logits_per_image": ("DT_FLOAT", "(-1, -1)")},
        },
    }
    if kind == "clip":
        expected["serving_default"] = expected["encode_image"]
    else:
        expected["classify"] = expected["serving_default"] = classify
    listed = saved_model_cli_signatures(export.dir, fresh_processes["saved_model_cli", kind])
    listed.pop("__saved_model_init_op", None)
    assert {name: signature["method"] for name, signature in listed.items()} == {
        name: "tensorflow/serving/predict" for name in expected
    }
    assert {name: {"inputs": s["inputs"], "outputs": s["outputs"]} for name, s in listed.items()} == expected


def test_export_is_written_to_a_temporary_directory_and_renamed(exports, tmp_path, monkeypatch):
    model = exports["clip"].obj
    parent = tmp_path / "models"
    parent.mkdir()
    (parent / "taken").mkdir()
    (parent / "taken" / "saved_model.pb").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="not an empty directory"):
        export_saved_model(model, str(parent / "taken"))

    def failing_save(obj, path, **kwargs):
        assert os.path.basename(path).startswith(".broken.") and path.endswith(".tmp")
        assert os.path.dirname(path) == str(parent)
        with open(os.path.join(path, "saved_model.pb"), "wb") as handle:
            handle.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(export_module.tf.saved_model, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        export_saved_model(model, str(parent / "broken"))
    assert sorted(os.listdir(parent)) == ["taken"], "nothing half-written is left behind"


def test_bad_arguments_name_the_problem(exports, tmp_path):
    with pytest.raises(TypeError, match="CLIP or ZeroShotClassifier, got str"):
        export_saved_model("ViT-B/32", str(tmp_path / "x"))
    with pytest.raises(ValueError, match="top_k must be a positive int"):
        export_saved_model(exports["classifier"].obj, str(tmp_path / "x"), top_k=0)
    assert not os.listdir(tmp_path)


# The tests reading the fresh processes come last: the processes run while the tests above do.
# A full_size check: two fresh processes decoding seven 24-megapixel JPEGs to measure memory; the default run
# keeps oversize images refused from their header under load (test_export_under_load.py).
@pytest.mark.full_size
def test_large_jpeg_is_served_one_image_at_a_time_with_bounded_memory(exports, fresh_processes):
    export = exports["classifier"]
    large = images.large_jpeg(6000, 4000)
    expected = np.asarray(export.obj(ImagePreprocessor(224)(tf.constant([large]))))
    served, one_image, report = _large_jpegs_served(fresh_processes["large", 1])
    np.testing.assert_allclose(served["outputs"]["probabilities"], expected, atol=TOLERANCE, rtol=0)
    print(f"\n6000x4000 JPEG ({len(large) / 1e6:.1f} MB), tiny model at 224 pixels: {report}")
    served, six_images, report = _large_jpegs_served(fresh_processes["large", 6])
    np.testing.assert_allclose(served["outputs"]["probabilities"], np.repeat(expected, 6, axis=0), atol=TOLERANCE)
    print(f"6000x4000 JPEG ({len(large) / 1e6:.1f} MB), tiny model at 224 pixels: {report}")
    # Images are decoded and resized one after another: the five more images of a six-image request add
    # less than 1.5 decoded images' worth of memory (holding them at once would add five; allocator
    # caching and fragmentation make up what is seen, about 30 to 70 MB here).
    assert one_image < 4 * DECODED_MB, one_image
    assert six_images - one_image < 1.5 * DECODED_MB, (one_image, six_images)


# The classifier's export holds every signature of the CLIP export (and `classify`): it is served in the
# default run; the CLIP export's own fresh-process run is a full_size check.
@pytest.mark.parametrize("kind", [pytest.param("clip", marks=pytest.mark.full_size), "classifier"])
def test_fresh_tensorflow_process_serves_every_signature_like_the_eager_model(kind, exports, fresh_processes):
    """Both ways of loading: `tf.saved_model.load`, and a TF 1 Session running the SignatureDefs as
    tensorflow_model_server does (its loader restores exactly the variables the graph reads)."""
    export = exports[kind]
    requests = _requests(export)
    answers = served_answers(fresh_processes["serve", kind])
    assert answers["modules"] == [], "the serving process imported " + ", ".join(answers["modules"])
    expected = CLIP_SIGNATURES + (["classify"] if kind == "classifier" else [])
    assert {name for name, _, _ in requests} == set(expected), "every signature is called"
    for loader in ("tf2", "session"):
        assert answers[loader]["signatures"] == sorted(expected), loader
        for index, ((name, _, check), answer) in enumerate(zip(requests, answers[loader]["calls"])):
            try:
                check(answer)
            except AssertionError as error:
                raise AssertionError(f"{loader} loader, request {index} ({name}): {error}") from error


@pytest.mark.full_size
def test_vit_b32_export_time_and_large_jpeg_memory(tmp_path):
    model = create_model("ViT-B/32")
    start = time.perf_counter()
    export_saved_model(model, str(tmp_path / "vit_b32" / "1"))
    export_seconds = time.perf_counter() - start
    large = images.large_jpeg(6000, 4000)
    expected = _normalized(model.encode_image(ImagePreprocessor(224)(tf.constant([large]))))
    small = np.array(_photographs()[:1], dtype=object)
    export_dir = str(tmp_path / "vit_b32" / "1")
    served, one_image, report = _serve_large_jpegs(export_dir, "encode_image", small, large, 1, tmp_path)
    np.testing.assert_allclose(served["outputs"]["embeddings"], expected, atol=TOLERANCE, rtol=0)
    print(f"\nViT-B/32 export {export_seconds:.1f} s; {report}")
    served, six_images, report = _serve_large_jpegs(export_dir, "encode_image", small, large, 6, tmp_path)
    print(f"ViT-B/32: {report}")
    assert six_images - one_image < 1.5 * DECODED_MB, (one_image, six_images)
