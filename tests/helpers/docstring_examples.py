"""The docstring examples of keras_clip's public API, and the files and variables they refer to.

`docstring_tests()` collects, with the standard `doctest` module, the examples of every public name
(`keras_clip.__all__` and the `__all__` of the public subpackages) and of its classes' public methods.
`write_example_files(folder)` writes the files the examples open, from real photographs (no download);
`example_namespace(docstring)` gives the names its examples use: the public names of the package that
exports the documented object, plus the variables of `EXAMPLE_VARIABLES` they read.
"""

import ast
import csv
import dataclasses
import doctest
import importlib
import inspect
import io
import json
import os
import re

import keras
import numpy as np
import tensorflow as tf

import keras_clip
from tests.helpers import caption_files, evaluation_data, images
from tests.helpers.sentencepiece_models import write_gemma_like_folder, write_siglip_like_model
from tests.helpers.tiny_models import TINY_VIT, tiny_clip

SUBPACKAGES = ("data", "evaluation", "training", "layers", "losses")
OPTION_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
# A line like `>>> classifier.predict_labels(x)  # e.g. [[('cat', 0.97)]]` shows output that depends on
# trained weights: it runs, but what it prints is not compared.
ILLUSTRATIVE_OUTPUT = re.compile(r"#\s*e\.g\.")
NOT_COMPARED = "<illustrative output, not compared>\n"
# A tiny CLIP with ViT-B/32's input size, so examples written for 224-pixel images run as they are; one
# layer per tower halves the time TensorFlow takes to trace its training step.
TINY_CLIP_224 = {"image_resolution": 224, "vision_patch_size": 32, "vision_layers": 1, "transformer_layers": 1}
PHOTO_COUNT = 64  # the examples' `batch_size=64` batches drop their remainder
FIRST_CAPTION = "a dog on a beach"  # what read_caption_index's example shows for the first row


# -- collecting the examples ------------------------------------------------------------------------


def _public_names():
    """(qualified name, object, exporting module) of every public name, each object once."""
    exports = [(keras_clip, name) for name in keras_clip.__all__ if name != "__version__"]
    for subpackage in SUBPACKAGES:
        module = importlib.import_module(f"keras_clip.{subpackage}")
        exports += [(module, name) for name in module.__all__]
    seen, names = set(), []
    for module, name in exports:
        value = getattr(module, name)
        if (inspect.ismodule(value) or inspect.isclass(value) or callable(value)) and id(value) not in seen:
            seen.add(id(value))
            names.append((f"{module.__name__}.{name}", value, module))
    return names


def _public_methods(cls):
    """(name, function) of the public methods and properties keras_clip's classes define for `cls`."""
    methods = {}
    for owner in reversed(cls.__mro__):
        if not owner.__module__.startswith("keras_clip"):
            continue
        for name, value in vars(owner).items():
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            elif isinstance(value, property):
                value = value.fget
            if not name.startswith("_") and inspect.isfunction(value):
                methods[name] = value
    return sorted(methods.items())


@dataclasses.dataclass
class DocstringTest:
    """One docstring's examples (`doctest.DocTest`) and the module whose public names they use."""

    name: str
    test: doctest.DocTest
    exporter: object

    @property
    def skipped(self):
        return [example for example in self.test.examples if example.options.get(doctest.SKIP)]


def docstring_tests():
    """Every public docstring with examples, as `DocstringTest`s sorted by qualified name."""
    finder = doctest.DocTestFinder(recurse=False)
    tests, seen = [], set()
    for name, value, exporter in _public_names():
        documented = [(name, value)]
        if inspect.isclass(value):
            documented += [(f"{name}.{method}", function) for method, function in _public_methods(value)]
        for qualified_name, documented_object in documented:
            if id(documented_object) in seen:
                continue
            seen.add(id(documented_object))
            for test in finder.find(documented_object, qualified_name, globs={}):
                if test.examples:
                    for example in test.examples:
                        if not example.want and ILLUSTRATIVE_OUTPUT.search(example.source):
                            example.want = NOT_COMPARED
                    tests.append(DocstringTest(qualified_name, test, exporter))
    return sorted(tests, key=lambda docstring: docstring.name)


class ExampleOutputChecker(doctest.OutputChecker):
    """doctest's checker, except that illustrative output (`# e.g.` lines) is not compared."""

    def check_output(self, want, got, optionflags):
        return want == NOT_COMPARED or super().check_output(want, got, optionflags)


# -- the files the examples read ----------------------------------------------------------------------


def _photo_rows(samples, folder):
    return [(f"{folder}{sample.filename}", sample.captions[0]) for sample in samples]


def _write_csv(path, rows):
    table = io.StringIO()
    csv.writer(table, lineterminator="\n").writerows([("filepath", "caption")] + rows)
    caption_files.write_file(path, table.getvalue())


def write_example_files(folder):
    """Writes, under `folder`, the files the examples open (see the list below)."""
    folder = os.fspath(folder)
    photographs = images.photographs()
    # cat.jpg, dog.png: two photographs (a cat, and a cup of coffee standing in for the dog).
    caption_files.write_file(os.path.join(folder, "cat.jpg"), images.encode(photographs["chelsea"], "jpeg"))
    caption_files.write_file(os.path.join(folder, "dog.png"), images.encode(photographs["coffee"], "png"))
    # photos/0001.jpg ... 0064.jpg: small crops of real photographs; photos/captions.csv lists them.
    samples = [
        dataclasses.replace(sample, name=f"{index + 1:04d}")
        for index, sample in enumerate(caption_files.captioned_photos(PHOTO_COUNT, formats=("jpeg",)))
    ]
    samples[0].captions = [FIRST_CAPTION]
    for sample in samples:
        caption_files.write_file(os.path.join(folder, "photos", sample.filename), sample.data)
    _write_csv(os.path.join(folder, "photos", "captions.csv"), _photo_rows(samples, ""))
    # train.csv: the photos and their captions; validation.csv: the first 8 of them.
    rows = _photo_rows(samples, "photos/")
    _write_csv(os.path.join(folder, "train.csv"), rows)
    _write_csv(os.path.join(folder, "validation.csv"), rows[:8])
    # captions.csv: the photos plus 3 samples a caption dataset skips: 2 missing images and a damaged one.
    caption_files.write_file(os.path.join(folder, "damaged.jpg"), caption_files.corrupt_image("truncated"))
    broken = [("photos/0065.jpg", "a lost photo"), ("photos/0066.jpg", "another"), ("damaged.jpg", "half a JPEG")]
    _write_csv(os.path.join(folder, "captions.csv"), rows + broken)
    # shard-000.tar: a WebDataset shard of the first 4 photos (`0001.jpg` + `0001.txt`, ...).
    members = [member for sample in samples[:4] for member in caption_files.sample_members(sample)]
    caption_files.write_file(os.path.join(folder, "shard-000.tar"), caption_files.tar_bytes(members))
    # pets/<class>/...: an image folder with one subfolder per class (astronaut, cat, coffee_cup, rocket).
    evaluation_data.write_image_folder(os.path.join(folder, "pets"))
    # tensorflow_datasets/: the "tiny_photos" TFDS dataset (3 classes; 5 test and 3 train images), prepared.
    evaluation_data.tiny_photos_builder(os.path.join(folder, "tensorflow_datasets"))
    # siglip-base-patch16-224/: a SigLIP folder's tokenizer files (a SentencePiece model trained in the tests).
    siglip = os.path.join(folder, "siglip-base-patch16-224")
    os.makedirs(siglip)
    write_siglip_like_model(os.path.join(siglip, "spiece.model"))
    with open(os.path.join(siglip, "config.json"), "w", encoding="utf-8") as handle:
        json.dump({"model_type": "siglip", "text_config": {"max_position_embeddings": 64}}, handle)
    # siglip2-base-patch16-224/: a SigLIP 2 folder's tokenizer files (a Gemma-like model trained in the tests).
    write_gemma_like_folder(os.path.join(folder, "siglip2-base-patch16-224"))


def tiny_release(name="ViT-B/32"):
    """The released model's table entry with the tiny CLIP's architecture (what `write_released_model_cache` stores)."""
    from keras_clip.models.presets import PRESETS

    return dataclasses.replace(PRESETS[name], architecture=tiny_clip(seed=1, **TINY_CLIP_224).architecture())


def write_released_model_cache(cache_root, name="ViT-B/32"):
    """A tiny CLIP's weights cached as `keras_clip.load(name)` caches a converted release (no download needed).

    The file is `<cache_root>/converted/<the release's SHA256>.safetensors`, in the cache's format.
    """
    from keras_clip.checkpoints.converted_cache import FORMAT, converted_path, weight_names
    from keras_clip.checkpoints.safetensors_io import write_safetensors
    from keras_clip.models.presets import PRESETS

    model = tiny_clip(seed=1, **TINY_CLIP_224)
    path = converted_path(os.fspath(cache_root), PRESETS[name].checkpoint.sha256)
    # The release's table entry must describe what the cache holds (load checks the sizes agree).
    os.makedirs(os.path.dirname(path), exist_ok=True)
    metadata = {"format": FORMAT, "config": json.dumps(model.architecture())}
    write_safetensors(path, dict(zip(weight_names(model), model.weights)), metadata)


# -- the variables the examples use ---------------------------------------------------------------------


def _read(paths):
    return [tf.io.read_file(path).numpy() for path in paths]


def _photo_paths(first, last):
    return [f"photos/{number:04d}.jpg" for number in range(first, last + 1)]


def _compiled_tiny_clip():
    model = tiny_clip(**TINY_CLIP_224)
    model.compile(optimizer="adam")
    return model


def _captions(first, last):
    return [captions[0] for captions in keras_clip.data.read_caption_index("train.csv").captions[first - 1 : last]]


def _training_batches():
    pixels = keras_clip.ImagePreprocessor(224)(_read(_photo_paths(1, 8)))
    tokens = keras_clip.tokenize(_captions(1, 8))
    return tf.data.Dataset.from_tensor_slices({"images": pixels, "tokens": tokens}).batch(4)


def _labelled(first, last):
    paths = _photo_paths(first, last)
    return tf.data.Dataset.from_tensor_slices((_read(paths), [number % 2 for number in range(len(paths))]))


def _torch_reference_model():
    from tests.helpers.openai_reference import random_reference_model

    return random_reference_model(TINY_VIT)[0]


# name -> (what it is, how to make it in the working folder of `write_example_files`)
EXAMPLE_VARIABLES = {
    "model": ("a tiny CLIP (224-pixel images, 32-dim embeddings), compiled with Adam", _compiled_tiny_clip),
    "photos": ("tf.string [2]: the bytes of cat.jpg and dog.png", lambda: tf.constant(_read(["cat.jpg", "dog.png"]))),
    "jpeg_bytes": ("the bytes of 8 JPEGs (photos/0001.jpg ... 0008.jpg)", lambda: _read(_photo_paths(1, 8))),
    "captions": ("their 8 captions", lambda: _captions(1, 8)),
    "labels": ("their labels, 0 (cat) or 1 (dog)", lambda: [number % 2 for number in range(8)]),
    "val_images": ("the bytes of 4 JPEGs (photos/0009.jpg ... 0012.jpg)", lambda: _read(_photo_paths(9, 12))),
    "val_labels": ("their labels, 0 (cat) or 1 (dog)", lambda: np.array([0, 1, 0, 1])),
    "dataset": ("2 batches {images, tokens} of 4 preprocessed photos and captions, for fit", _training_batches),
    "train": ("(JPEG bytes, label) pairs of 16 photos", lambda: _labelled(13, 28)),
    "test": ("(JPEG bytes, label) pairs of 8 other photos", lambda: _labelled(29, 36)),
    "torch_model": ("OpenAI's PyTorch CLIP of the tiny configuration, random weights", _torch_reference_model),
}


def free_names(test):
    """The names a docstring's examples read before (or without) assigning them."""
    bound, free = set(), set()
    for example in test.examples:
        names = [node for node in ast.walk(ast.parse(example.source)) if isinstance(node, ast.Name)]
        free |= {name.id for name in names if isinstance(name.ctx, ast.Load)} - bound
        bound |= {name.id for name in names if isinstance(name.ctx, ast.Store)}
    return free


def example_namespace(docstring):
    """The globals of a docstring's examples: `keras_clip`, `keras`, `tf`, `np`, the public names of the
    package exporting the documented object, and the `EXAMPLE_VARIABLES` the examples read."""
    exporter = docstring.exporter
    namespace = {"keras_clip": keras_clip, "keras": keras, "tf": tf, "np": np}
    namespace.update({name: getattr(exporter, name) for name in exporter.__all__ if name != "__version__"})
    for name in free_names(docstring.test) & set(EXAMPLE_VARIABLES):
        namespace[name] = EXAMPLE_VARIABLES[name][1]()
    return namespace
