"""The shared layer contract (tests/helpers/layer_checks.py) on every public Keras layer of the package.

Trainable parameter counts are those of OpenAI's reference modules (`clip/model.py`) built with the
same sizes (SigLIP's attention pooling: transformers'), counted as torch counts them.
"""

import base64
import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_clip
from keras_clip import layers
from tests.helpers.images import photographs, resized
from tests.helpers.layer_checks import run_layer_checks
from tests.helpers.model_inputs import random_tokens
from tests.helpers.openai_reference import reference_module
from tests.helpers.sentencepiece_models import gemma_like_model, siglip_like_model

rng = np.random.default_rng(0)
SEQUENCE = rng.normal(size=(2, 7, 64)).astype("float32")
FEATURE_MAP = rng.normal(size=(2, 4, 4, 32)).astype("float32")
IMAGES = rng.normal(size=(2, 64, 64, 3)).astype("float32")
PHOTOS = np.stack([resized(photographs()["coffee"], 70, 50)] * 2)


def reference_parameters(module_name, *args, **kwargs):
    """Parameters of OpenAI's `clip.model.<module_name>(*args, **kwargs)`, or else of torch's nn module."""
    import torch

    module = getattr(reference_module("model"), module_name, None) or getattr(torch.nn, module_name)
    return sum(parameter.numel() for parameter in module(*args, **kwargs).parameters())


def text_tower_parameters(context_length, vocab_size, width, num_heads, num_layers, output_dim):
    """OpenAI's CLIP text parts: token and position embeddings, transformer, ln_final, text_projection."""
    transformer = reference_parameters("Transformer", width, num_layers, num_heads)
    return vocab_size * width + context_length * width + transformer + 2 * width + width * output_dim


def probe_pooling_parameters(width, num_heads, mlp_width):
    """transformers' `SiglipMultiheadAttentionPoolingHead` of the same sizes."""
    from transformers.models.siglip.configuration_siglip import SiglipVisionConfig
    from transformers.models.siglip.modeling_siglip import SiglipMultiheadAttentionPoolingHead

    config = SiglipVisionConfig(hidden_size=width, num_attention_heads=num_heads, intermediate_size=mlp_width)
    return sum(parameter.numel() for parameter in SiglipMultiheadAttentionPoolingHead(config).parameters())


CASES = {
    "FusedSelfAttention": (dict(width=64, num_heads=4, causal=True), SEQUENCE, (2, 7, 64),
                           lambda: reference_parameters("MultiheadAttention", 64, 4)),
    "ResidualAttentionBlock": (dict(width=64, num_heads=2), SEQUENCE, (2, 7, 64),
                               lambda: reference_parameters("ResidualAttentionBlock", 64, 2)),
    "Transformer": (dict(width=64, num_layers=2, num_heads=2, causal=True), SEQUENCE, (2, 7, 64),
                    lambda: reference_parameters("Transformer", 64, 2, 2)),
    "Bottleneck": (dict(inplanes=32, planes=16, stride=2), FEATURE_MAP, (2, 2, 2, 64),
                   lambda: reference_parameters("Bottleneck", 32, 16, 2)),
    "AttentionPool2d": (dict(spatial_dim=4, embed_dim=32, num_heads=2, output_dim=16), FEATURE_MAP, (2, 16),
                        lambda: reference_parameters("AttentionPool2d", 4, 32, 2, 16)),
    "VisionTransformer": (dict(image_resolution=64, patch_size=16, width=64, num_layers=2, num_heads=1, output_dim=32),
                          IMAGES, (2, 32), lambda: reference_parameters("VisionTransformer", 64, 16, 64, 2, 1, 32)),
    "ProbePooling": (dict(width=64, num_heads=4, mlp_width=96), SEQUENCE, (2, 64),
                     lambda: probe_pooling_parameters(64, 4, 96)),
    "ModifiedResNet": (dict(layers=(1, 2, 1, 1), output_dim=32, num_heads=2, image_resolution=64, width=8), IMAGES,
                       (2, 32), lambda: reference_parameters("ModifiedResNet", (1, 2, 1, 1), 32, 2, 64, 8)),
    "TextTransformer": (dict(context_length=77, vocab_size=49408, width=64, num_heads=1, num_layers=2, output_dim=32),
                        random_tokens(2), (2, 32), lambda: text_tower_parameters(77, 49408, 64, 1, 2, 32)),
    "Tokenizer": (dict(context_length=16, truncate=True),
                  tf.constant(["a photo of a cat", "\u039f\u0394\u039f\u03a3 &amp; \U0001f600", ""]), (3, 16),
                  lambda: 0),
    "SentencePieceTokenizer": (dict(model="base64:" + base64.b64encode(siglip_like_model()).decode(),
                                    context_length=16),
                               tf.constant(["a photo of a cat", "Σ </s> \U0001f600", ""]), (3, 16), lambda: 0),
    "GemmaTokenizer": (dict(model="base64:" + base64.b64encode(gemma_like_model()).decode(), context_length=16),
                       tf.constant(["a photo of a cat", "Σ <eos> \U0001f600", ""]), (3, 16), lambda: 0),
    "ImagePreprocessor": (dict(image_resolution=32, parallel_iterations=2), PHOTOS, (2, 32, 32, 3), lambda: 0),
    "TrainingAugmentation": (dict(image_resolution=32, seed=3), PHOTOS, (2, 32, 32, 3), lambda: 0),
}  # fmt: skip


def public_layer_classes():
    """Every Keras layer class the package exports (keras_clip.layers and the top-level names; models aside)."""
    names = [getattr(layers, name) for name in layers.__all__]
    names += [getattr(keras_clip, name) for name in keras_clip.__all__]
    return {
        value.__name__: value
        for value in names
        if inspect.isclass(value) and issubclass(value, keras.layers.Layer) and not issubclass(value, keras.Model)
    }


def test_every_public_layer_is_checked():
    assert sorted(public_layer_classes()) == sorted(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_layer_contract(name):
    kwargs, data, shape, parameters = CASES[name]
    run_layer_checks(public_layer_classes()[name], kwargs, data, shape, expected_parameters=parameters())
