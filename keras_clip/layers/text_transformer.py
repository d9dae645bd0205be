"""CLIP's text tower."""

import keras
from keras import ops

from keras_clip.layers.residual_attention_block import LAYER_NORM_EPSILON
from keras_clip.layers.shapes import check_token_shape
from keras_clip.layers.transformer import Transformer


@keras.saving.register_keras_serializable(package="keras_clip")
class TextTransformer(keras.layers.Layer):
    """Token and positional embeddings, a causal transformer, and a projection of the EOT position.

    The pooled position is the argmax of the token ids: the end-of-text token (49407) has the
    largest id in CLIP's vocabulary.

    Args:
        context_length: number of token positions (77 for every OpenAI model).
        vocab_size: number of token ids (49408).
        width: transformer width.
        num_heads: attention heads.
        num_layers: transformer depth.
        output_dim: size of the projected text embedding.

    Example:
    >>> tower = TextTransformer(context_length=77, vocab_size=49408, width=64, num_heads=1,
    ...                         num_layers=2, output_dim=32)
    >>> tower(np.zeros((2, 77), "int32")).shape
    TensorShape([2, 32])
    """

    def __init__(self, context_length, vocab_size, width, num_heads, num_layers, output_dim, **kwargs):
        super().__init__(**kwargs)
        self.context_length = context_length
        self.vocab_size = vocab_size
        self.width = width
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.output_dim = output_dim
        policy = self.dtype_policy
        self.token_embedding = keras.layers.Embedding(
            vocab_size,
            width,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="token_embedding",
            dtype=policy,
        )
        self.transformer = Transformer(width, num_layers, num_heads, causal=True, name="transformer", dtype=policy)
        self._set_block_initializers()
        self.ln_final = keras.layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="ln_final", dtype=policy)

    def build(self, input_shape=None):
        self.positional_embedding = self.add_weight(
            shape=(self.context_length, self.width),
            initializer=keras.initializers.RandomNormal(stddev=0.01),
            name="positional_embedding",
        )
        self.text_projection = self.add_weight(
            shape=(self.width, self.output_dim),
            initializer=keras.initializers.RandomNormal(stddev=self.width**-0.5),
            name="text_projection",
        )
        self.token_embedding.build((None, self.context_length))
        sequence_shape = (None, self.context_length, self.width)
        self.transformer.build(sequence_shape)
        self.ln_final.build(sequence_shape)

    def _set_block_initializers(self):
        # OpenAI's initialisation of the text transformer, which training from scratch relies on.
        # Given to the Dense layers before they are built, so each kernel is drawn once, or not at
        # all when a checkpoint's values replace it (keras_clip/checkpoints/deferred_init.py).
        proj_std = self.width**-0.5 * (2 * self.num_layers) ** -0.5
        attn_std = self.width**-0.5
        fc_std = (2 * self.width) ** -0.5
        for block in self.transformer.resblocks:
            for dense, std in (
                (block.attn.in_proj, attn_std),
                (block.attn.out_proj, proj_std),
                (block.c_fc, fc_std),
                (block.c_proj, proj_std),
            ):
                dense.kernel_initializer = keras.initializers.RandomNormal(stddev=std)

    def call(self, tokens):
        # Tokens may be cut to fewer than context_length positions after every row's EOT: the
        # causal mask makes the later positions irrelevant to the pooled one.
        check_token_shape(tokens.shape, self.context_length, allow_shorter=True)
        x = self.token_embedding(tokens)
        x = x + ops.cast(self.positional_embedding[: ops.shape(tokens)[1]], x.dtype)
        x = self.ln_final(self.transformer(x))
        eot_positions = ops.argmax(tokens, axis=-1)
        x = ops.take_along_axis(x, eot_positions[:, None, None], axis=1)[:, 0]
        return ops.matmul(x, ops.cast(self.text_projection, x.dtype))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            context_length=self.context_length,
            vocab_size=self.vocab_size,
            width=self.width,
            num_heads=self.num_heads,
            num_layers=self.num_layers,
            output_dim=self.output_dim,
        )
        return config
