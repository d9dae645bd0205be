"""Small labelled image collections made of real photographs: an image folder and a local TFDS dataset.

Nothing is downloaded: the photographs are scikit-learn's and scikit-image's bundled images (see
`tests/helpers/images.py`), written in several formats. `TinyPhotos` is a TFDS builder whose
`download_and_prepare` only writes those photographs into a local data_dir.
"""

import os

import numpy as np

from tests.helpers import images

# class folder -> (photograph, format) of its images
FOLDER_LAYOUT = {
    "astronaut": [("astronaut_square", "jpeg_cmyk"), ("astronaut_square", "png16")],
    "cat": [("chelsea_odd_size", "jpeg"), ("chelsea_tiny_portrait", "png_palette")],
    "coffee_cup": [("coffee_landscape", "jpeg_progressive"), ("coffee_smaller_than_224", "bmp")],
    "rocket": [("rocket_portrait", "png"), ("rocket_portrait", "gif"), ("china_tall_portrait", "webp")],
}
EXTENSIONS = {"jpeg": "jpg", "png": "png", "png16": "png", "gif": "gif", "bmp": "bmp", "webp": "webp"}
CORRUPT_JPEG = b"\xff\xd8\xff\xe0" + b"this is not image data" * 4


def small_photo(name, longest=160):
    """A photograph shrunk so its longer side is at most `longest` (keeps the tests fast)."""
    pixels = dict(images.varied_photographs())[name]
    height, width = pixels.shape[:2]
    scale = min(1.0, longest / max(height, width))
    return images.resized(pixels, max(1, round(width * scale)), max(1, round(height * scale))) if scale < 1 else pixels


def write_image_folder(root, corrupt_files=()):
    """Writes FOLDER_LAYOUT's photographs under `root/<class>/`; returns [(path, label, encoded bytes)].

    `corrupt_files`: (class, file name) pairs written with bytes that are not a decodable image.
    """
    entries = []
    for label, folder in enumerate(sorted(FOLDER_LAYOUT)):
        os.makedirs(os.path.join(root, folder), exist_ok=True)
        for index, (photo, fmt) in enumerate(FOLDER_LAYOUT[folder]):
            data = images.encode(small_photo(photo), fmt)
            path = os.path.join(root, folder, f"{index:02d}_{photo}.{EXTENSIONS[fmt.split('_')[0]]}")
            with open(path, "wb") as file:
                file.write(data)
            entries.append((path, label, data))
    for folder, name in corrupt_files:
        path = os.path.join(root, folder, name)
        with open(path, "wb") as file:
            file.write(CORRUPT_JPEG)
    with open(os.path.join(root, "cat", "notes.txt"), "w") as file:
        file.write("not an image: ignored by its extension")
    return sorted(entries, key=lambda entry: (entry[1], entry[0]))


TFDS_CLASSES = ["tabby_cat", "coffee_cup", "rocket"]
TFDS_EXAMPLES = {
    "test": [("chelsea_odd_size", 0), ("coffee_landscape", 1), ("rocket_portrait", 2), ("chelsea_tiny_portrait", 0),
             ("coffee_smaller_than_224", 1)],
    "train": [("astronaut_square", 0), ("china_landscape", 1), ("flower_landscape", 2)],
}  # fmt: skip


def tiny_photos_builder(data_dir):
    """The prepared `TinyPhotos` TFDS builder in `data_dir`."""
    builder = _tiny_photos_class()(data_dir=str(data_dir))
    builder.download_and_prepare()
    return builder


_CLASS = []


def _tiny_photos_class():
    """Defines (once per process: TFDS registers builders by name) the `tiny_photos` builder."""
    if _CLASS:
        return _CLASS[0]
    import tensorflow_datasets as tfds

    class TinyPhotos(tfds.core.GeneratorBasedBuilder):
        """Real photographs in three classes, written locally (no download)."""

        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return self.dataset_info_from_configs(
                features=tfds.features.FeaturesDict(
                    {
                        "image": tfds.features.Image(encoding_format="png"),
                        "label": tfds.features.ClassLabel(names=TFDS_CLASSES),
                    }
                ),
                supervised_keys=("image", "label"),
            )

        def _split_generators(self, dl_manager):
            return {split: self._generate_examples(examples) for split, examples in TFDS_EXAMPLES.items()}

        def _generate_examples(self, examples):
            for index, (photo, label) in enumerate(examples):
                yield index, {"image": np.ascontiguousarray(small_photo(photo)), "label": label}

    _CLASS.append(TinyPhotos)
    return TinyPhotos
