"""The CLIP model: an image tower, a text tower and a learnable temperature."""

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_clip.image.settings import Preprocessing
from keras_clip.layers.modified_resnet import ModifiedResNet
from keras_clip.layers.shapes import check_image_shape, check_token_shape
from keras_clip.layers.text_transformer import TextTransformer
from keras_clip.layers.vision_transformer import VisionTransformer
from keras_clip.models.compiled_encoder import CompiledEncoder, is_eager_value
from keras_clip.models.contrastive_steps import ContrastiveSteps
from keras_clip.models.temperature import MAX_LOGIT_SCALE, OPENAI_INIT_LOGIT_SCALE
from keras_clip.models.presets import SIZES, architecture_by_name, find_preset, model_name, unknown_model_message
from keras_clip.utils.normalization import l2_normalize

# OpenAI's constructor arguments, then the options other checkpoint families vary (OpenAI's values by default).
ARCHITECTURE_KEYS = (
    "embed_dim", "image_resolution", "vision_layers", "vision_width", "vision_patch_size", "context_length",
    "vocab_size", "transformer_width", "transformer_heads", "transformer_layers", "vision_heads",
    "vision_mlp_width", "transformer_mlp_width", "activation", "layer_norm_epsilon", "text_causal", "text_pooling",
    "eos_token_id", "text_projection_bias", "image_pooling", "init_logit_scale", "init_logit_bias",
)  # fmt: skip

# XLA for the eager encode_image / encode_text graphs. Off by default: the plain graph already runs at
# 84-85% of this CPU's float32 matmul peak; XLA adds 7% (ViT images) to 18% (text) but is slower on
# ModifiedResNet images and compiles each new batch shape (~0.7 s per shape on ViT-B/32).
JIT_COMPILE_INFERENCE = False


@keras.saving.register_keras_serializable(package="keras_clip")
class MaxValue(keras.constraints.Constraint):
    """Clips a weight to at most `max_value` after every optimizer update."""

    def __init__(self, max_value):
        self.max_value = max_value

    def __call__(self, w):
        return ops.minimum(w, ops.cast(self.max_value, w.dtype))

    def get_config(self):
        return {"max_value": self.max_value}


@keras.saving.register_keras_serializable(package="keras_clip")
class CLIP(ContrastiveSteps, keras.Model):
    """Contrastive Language-Image Pre-training model, with OpenAI's constructor arguments.

    Args:
        embed_dim: size of the shared image/text embedding.
        image_resolution: height and width of the square input images.
        vision_layers: an int (ViT depth) for a VisionTransformer image tower, or four ints
            (blocks per stage) for a ModifiedResNet.
        vision_width: ViT width, or the ResNet's stem width.
        vision_patch_size: ViT patch size (ignored, may be None, for a ResNet).
        context_length: text positions (77).
        vocab_size: token ids (49408).
        transformer_width: text transformer width.
        transformer_heads: text transformer heads.
        transformer_layers: text transformer depth.
        vision_heads: image tower attention heads (None: OpenAI's rule, vision_width // 64 for a ViT,
            vision_width * 32 // 64 for a ResNet's attention pooling).
        vision_mlp_width, transformer_mlp_width: hidden width of each tower's MLPs (None: 4 * width).
        activation: the MLPs' activation: "quick_gelu" (OpenAI's), "gelu" (exact, as LAION-2B and
            DataComp checkpoints) or "gelu_tanh".
        layer_norm_epsilon: epsilon of every LayerNorm.
        text_causal: causal attention in the text tower (OpenAI's) or full attention.
        text_pooling: the text position projected: "argmax" of the token ids (OpenAI's), "eos" (the
            first `eos_token_id`) or "last".
        eos_token_id: the end-of-text id, for `text_pooling="eos"`.
        text_projection_bias: the text projection adds a bias.
        image_pooling: how the ViT summarises an image: "class_token" (OpenAI's) or "map" (SigLIP's
            attention pooling; no projection, so `vision_width` must equal `embed_dim`).
        init_logit_scale: initial log inverse temperature (OpenAI's: ln(1 / 0.07); SigLIP's: ln 10).
        init_logit_bias: None (CLIP: no bias), or the initial value of a learnable `logit_bias` added to
            every logit (SigLIP's: -10).
        preprocessing: the image preprocessing the weights expect, a `keras_clip.image.settings.Preprocessing`
            or its dict (None: OpenAI's at `image_resolution`). `keras_clip.load` sets the checkpoint's;
            embedding, evaluation, the command line and exports use it.
        remat: rematerialise every residual block of both towers in training: each block's activations
            are recomputed in the backward pass instead of kept, for less memory at the cost of about one
            more forward pass (`model.remat = True` switches it on a built model).
            Outputs, gradients and inference are unchanged.

    Inputs of `call`: `{"images": float32 [N, R, R, 3], "tokens": int32 [M, context_length]}`;
    outputs `(logits_per_image [N, M], logits_per_text [M, N])`: `exp(logit_scale) * cosine (+ logit_bias)`.

    `model.compile(optimizer)` then `model.fit(dataset)` trains with CLIP's contrastive loss on
    batches `{"images": ..., "tokens": ...}` (see `keras_clip.training`); `logit_scale` is clamped
    to at most ln(100) after every update.

    Example:
    >>> model = keras_clip.create_model("ViT-B/32")
    >>> images = keras_clip.ImagePreprocessor(224)(photos)
    >>> logits_per_image, _ = model({"images": images, "tokens": keras_clip.tokenize(["a dog"])})
    >>> logits_per_image.shape
    TensorShape([2, 1])
    """

    def __init__(
        self,
        embed_dim,
        image_resolution,
        vision_layers,
        vision_width,
        vision_patch_size,
        context_length,
        vocab_size,
        transformer_width,
        transformer_heads,
        transformer_layers,
        vision_heads=None,
        vision_mlp_width=None,
        transformer_mlp_width=None,
        activation="quick_gelu",
        layer_norm_epsilon=1e-5,
        text_causal=True,
        text_pooling="argmax",
        eos_token_id=None,
        text_projection_bias=False,
        image_pooling="class_token",
        init_logit_scale=OPENAI_INIT_LOGIT_SCALE,
        init_logit_bias=None,
        preprocessing=None,
        remat=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.embed_dim = embed_dim
        self.image_resolution = image_resolution
        self.vision_layers = tuple(vision_layers) if isinstance(vision_layers, (tuple, list)) else vision_layers
        self.vision_width = vision_width
        self.vision_patch_size = vision_patch_size
        self.context_length = context_length
        self.vocab_size = vocab_size
        self.transformer_width = transformer_width
        self.transformer_heads = transformer_heads
        self.transformer_layers = transformer_layers
        self.vision_heads = vision_heads or (vision_width * 32 // 64 if self.is_resnet else vision_width // 64)
        self.vision_mlp_width = None if self.is_resnet else int(vision_mlp_width or 4 * vision_width)
        self.transformer_mlp_width = int(transformer_mlp_width or 4 * transformer_width)
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.text_causal = text_causal
        self.text_pooling = text_pooling
        self.eos_token_id = eos_token_id
        self.text_projection_bias = text_projection_bias
        self.image_pooling = image_pooling
        self.init_logit_scale = float(init_logit_scale)
        self.init_logit_bias = None if init_logit_bias is None else float(init_logit_bias)
        self.preprocessing = preprocessing
        policy = self.dtype_policy
        if self.is_resnet:
            self.visual = ModifiedResNet(
                layers=self.vision_layers,
                output_dim=embed_dim,
                num_heads=self.vision_heads,
                image_resolution=image_resolution,
                width=vision_width,
                remat=remat,
                name="visual",
                dtype=policy,
            )
        else:
            self.visual = VisionTransformer(
                image_resolution=image_resolution,
                patch_size=vision_patch_size,
                width=vision_width,
                num_layers=vision_layers,
                num_heads=self.vision_heads,
                output_dim=embed_dim,
                mlp_width=self.vision_mlp_width,
                activation=activation,
                layer_norm_epsilon=layer_norm_epsilon,
                pooling=image_pooling,
                remat=remat,
                name="visual",
                dtype=policy,
            )
        self.text = TextTransformer(
            context_length=context_length,
            vocab_size=vocab_size,
            width=transformer_width,
            num_heads=transformer_heads,
            num_layers=transformer_layers,
            output_dim=embed_dim,
            mlp_width=self.transformer_mlp_width,
            activation=activation,
            layer_norm_epsilon=layer_norm_epsilon,
            causal=text_causal,
            pooling=text_pooling,
            eos_token_id=eos_token_id,
            projection_bias=text_projection_bias,
            remat=remat,
            name="text",
            dtype=policy,
        )
        self.visual.build((None, image_resolution, image_resolution, 3))
        self.text.build((None, context_length))
        self.logit_scale = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.init_logit_scale),
            constraint=MaxValue(MAX_LOGIT_SCALE),
            name="logit_scale",
        )
        self.logit_bias = None
        if self.init_logit_bias is not None:
            self.logit_bias = self.add_weight(
                shape=(), initializer=keras.initializers.Constant(self.init_logit_bias), name="logit_bias"
            )
        self._create_contrastive_metrics()
        self.built = True

    #: Compile the eager inference graphs with XLA: set True on an instance for long embedding runs
    #: of one batch size (see benchmarks/inference.py); set before the first encode call.
    jit_compile_inference = JIT_COMPILE_INFERENCE

    @property
    def preprocessing(self):
        """The `Preprocessing` (resolution, mean/std, interpolation, resize mode) the weights expect."""
        return self._preprocessing

    @preprocessing.setter
    def preprocessing(self, settings):
        if settings is None:
            settings = Preprocessing(self.image_resolution)
        elif isinstance(settings, dict):
            settings = Preprocessing(**settings)
        if settings.image_resolution != self.image_resolution:
            raise ValueError(f"Preprocessing for {settings.image_resolution}-pixel images does not fit a model of "
                             f"{self.image_resolution}-pixel images")  # fmt: skip
        self.__dict__["_preprocessing"] = settings  # a plain record: not tracked by Keras

    @property
    def remat(self):
        """Both towers rematerialise their residual blocks in training (see the constructor's `remat`)."""
        return self.visual.remat and self.text.remat

    @remat.setter
    def remat(self, value):
        self.visual.remat = self.text.remat = bool(value)
        self.train_function = None  # a training step already traced kept the old setting

    @property
    def is_resnet(self):
        return isinstance(self.vision_layers, tuple)

    def _compiled(self, tower):
        """The cached CompiledEncoder of "visual" or "text" (created on first eager call)."""
        encoders = self.__dict__.setdefault("_compiled_encoders", {})
        if tower not in encoders:
            if tower == "visual":
                resolution = self.image_resolution
                spec = tf.TensorSpec((None, resolution, resolution, 3), tf.float32)
            else:
                spec = tf.TensorSpec((None, self.context_length), tf.int32)
            trim_tokens = tower == "text" and self.text.trims_after_pooled_position
            eos_token_id = self.eos_token_id if self.text_pooling == "eos" else None
            encoders[tower] = CompiledEncoder(getattr(self, tower), spec, self.embed_dim, self.jit_compile_inference,
                                              trim_tokens=trim_tokens, eos_token_id=eos_token_id)  # fmt: skip
        return encoders[tower]

    def encode_image(self, images, normalize=False, training=False):
        """Image embeddings [N, embed_dim], float32; L2-normalised with `normalize=True`.

        Not normalised by default, as OpenAI's `encode_image`. Eager calls (numpy arrays, eager
        tensors) run a compiled graph cached on the model; inside `tf.function`, `fit` or a
        SavedModel the tower is called directly.
        """
        if not training and is_eager_value(images):
            images = images if hasattr(images, "shape") else np.asarray(images, np.float32)
            check_image_shape(images.shape, self.image_resolution, "encode_image")
            features = self._compiled("visual")(images)
        else:
            features = ops.cast(self.visual(images, training=training), "float32")
        return l2_normalize(features) if normalize else features

    def encode_text(self, tokens, normalize=False, training=False):
        """Text embeddings [N, embed_dim], float32; L2-normalised with `normalize=True`.

        Not normalised by default, as OpenAI's `encode_text`. Eager calls run a compiled graph
        cached on the model, like `encode_image`.
        """
        if not training and is_eager_value(tokens):
            tokens = tokens if hasattr(tokens, "shape") else np.asarray(tokens, np.int32)
            check_token_shape(tokens.shape, self.context_length)
            features = self._compiled("text")(tokens)
        else:
            features = ops.cast(self.text(tokens, training=training), "float32")
        return l2_normalize(features) if normalize else features

    def lock_image_tower(self):
        """Freeze the image tower (LiT: train the text tower against fixed image features)."""
        self.visual.trainable = False

    def lock_text_tower(self):
        """Freeze the text tower (train the image tower against fixed text features)."""
        self.text.trainable = False

    def logits(self, image_features, text_features):
        """Scaled cosine similarities `(logits_per_image, logits_per_text)` of unnormalised features
        (plus `logit_bias` where the model has one)."""
        scale = ops.exp(ops.cast(self.logit_scale, "float32"))
        logits_per_image = scale * ops.matmul(l2_normalize(image_features), ops.transpose(l2_normalize(text_features)))
        if self.logit_bias is not None:
            logits_per_image = logits_per_image + ops.cast(self.logit_bias, "float32")
        return logits_per_image, ops.transpose(logits_per_image)

    def call(self, inputs, training=False):
        image_features = self.encode_image(inputs["images"], training=training)
        text_features = self.encode_text(inputs["tokens"], training=training)
        return self.logits(image_features, text_features)

    @classmethod
    def from_preset(cls, preset, pretrained=None, **kwargs):
        """A released model with its weights: Keras' spelling of `keras_clip.load(preset)[0]`.

        Args:
            preset: a released model's name (`keras_clip.list_pretrained()`, OpenAI's names, "hf-hub:...")
                or a checkpoint path, as `keras_clip.load` takes.
            pretrained: open_clip's tag, with an architecture name.
            **kwargs: `keras_clip.load`'s other arguments (cache_dir, dtype, verbose, architecture).

        Example:
        >>> model = keras_clip.CLIP.from_preset("ViT-B/32")
        """
        from keras_clip.checkpoints.load import load_model

        return load_model(preset, pretrained=pretrained, **kwargs)

    def architecture(self):
        """The constructor arguments that define the architecture (JSON-serialisable)."""
        config = {key: getattr(self, key) for key in ARCHITECTURE_KEYS}
        config["vision_layers"] = list(self.vision_layers) if self.is_resnet else self.vision_layers
        return config

    def get_config(self):
        return dict(self.architecture(), name=self.name, dtype=keras.dtype_policies.serialize(self.dtype_policy),
                    preprocessing=dataclasses.asdict(self.preprocessing), remat=self.remat)  # fmt: skip


def create_model(name, **overrides):
    """A randomly initialised CLIP with the architecture of a released model, or of open_clip's architecture name.

    Args:
        name: a released model (`keras_clip.available_models()`, e.g. "ViT-B/32", or "<architecture>/<tag>"
            of `keras_clip.list_pretrained()`), or an architecture name ("ViT-H-14"; "-quickgelu" for QuickGELU).
        **overrides: constructor arguments to change (e.g. `dtype="mixed_bfloat16"`, `remat=True`).

    Example:
    >>> model = keras_clip.create_model("RN50")
    """
    preset = find_preset(name)
    if preset is not None:
        architecture = preset.architecture
    elif name.removesuffix("-quickgelu") in SIZES:
        architecture = architecture_by_name(name)
    else:
        raise ValueError(f"{unknown_model_message(name)}; or an architecture: {', '.join(SIZES)}")
    config = dict(architecture, name=model_name(name))
    config.update(overrides)
    return CLIP(**config)
