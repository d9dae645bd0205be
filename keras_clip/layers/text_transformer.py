"""CLIP's text tower."""

import keras
from keras import ops

from keras_clip.layers.layer_normalization import LeanLayerNormalization
from keras_clip.layers.residual_attention_block import LAYER_NORM_EPSILON
from keras_clip.layers.shapes import check_token_shape
from keras_clip.layers.transformer import Transformer, tower_remat

POOLINGS = ("argmax", "eos", "last")


@keras.saving.register_keras_serializable(package="keras_clip")
class TextTransformer(keras.layers.Layer):
    """Token and positional embeddings, a transformer, and a projection of one pooled position.

    OpenAI's CLIP pools at the argmax of the token ids (its end-of-text token, 49407, has the largest
    id) behind a causal mask; other checkpoints pool at the first `eos_token_id` or at the last position.

    Args:
        context_length: number of token positions (77 for every OpenAI model).
        vocab_size: number of token ids (49408).
        width: transformer width.
        num_heads: attention heads.
        num_layers: transformer depth.
        output_dim: size of the projected text embedding.
        mlp_width: hidden width of the blocks' MLPs (None: 4 * width).
        activation: the MLPs' activation: "quick_gelu" (OpenAI's), "gelu" or "gelu_tanh".
        layer_norm_epsilon: epsilon of every LayerNorm.
        causal: causal attention (OpenAI's) or full attention.
        pooling: the position projected: "argmax" (of the token ids; OpenAI's), "eos" (the first
            `eos_token_id`) or "last".
        eos_token_id: the end-of-text id, for "eos" pooling.
        projection_bias: the projection adds a bias.
        remat: in training, recompute each transformer block's activations in the backward pass
            instead of keeping them: less memory for about one more forward pass (see `Transformer`).

    Example:
    >>> tower = TextTransformer(context_length=77, vocab_size=49408, width=64, num_heads=1,
    ...                         num_layers=2, output_dim=32)
    >>> tower(np.zeros((2, 77), "int32")).shape
    TensorShape([2, 32])
    """

    def __init__(self, context_length, vocab_size, width, num_heads, num_layers, output_dim, mlp_width=None,
                 activation="quick_gelu", layer_norm_epsilon=LAYER_NORM_EPSILON, causal=True, pooling="argmax",
                 eos_token_id=None, projection_bias=False, remat=False, **kwargs):  # fmt: skip
        super().__init__(**kwargs)
        if pooling not in POOLINGS:
            raise ValueError(f"Unknown text pooling {pooling!r}; expected one of {', '.join(POOLINGS)}")
        if pooling == "eos" and eos_token_id is None:
            raise ValueError('pooling="eos" needs the eos_token_id')
        self.context_length = context_length
        self.vocab_size = vocab_size
        self.width = width
        self.num_heads = num_heads
        self.num_layers = num_layers
        self.output_dim = output_dim
        self.mlp_width = int(mlp_width or 4 * width)
        self.activation = activation
        self.layer_norm_epsilon = layer_norm_epsilon
        self.causal = causal
        self.pooling = pooling
        self.eos_token_id = eos_token_id
        self.projection_bias = projection_bias
        policy = self.dtype_policy
        self.token_embedding = keras.layers.Embedding(
            vocab_size,
            width,
            embeddings_initializer=keras.initializers.RandomNormal(stddev=0.02),
            name="token_embedding",
            dtype=policy,
        )
        self.transformer = Transformer(width, num_layers, num_heads, causal, self.mlp_width, activation,
                                       layer_norm_epsilon, remat=remat, name="transformer", dtype=policy)  # fmt: skip
        self._set_block_initializers()
        self.ln_final = LeanLayerNormalization(epsilon=layer_norm_epsilon, name="ln_final", dtype=policy)

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
        if self.projection_bias:
            self.text_projection_bias = self.add_weight(
                shape=(self.output_dim,), initializer="zeros", name="text_projection_bias"
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

    @property
    def trims_after_pooled_position(self):
        """True if positions after every row's pooled one cannot change the output (causal, not "last")."""
        return self.causal and self.pooling != "last"

    def pooled_positions(self, tokens):
        """The position each row of `tokens` is pooled at (int [N])."""
        if self.pooling == "argmax":
            return ops.argmax(tokens, axis=-1)
        if self.pooling == "eos":
            return ops.argmax(ops.cast(ops.equal(tokens, self.eos_token_id), "int32"), axis=-1)
        return ops.full((ops.shape(tokens)[0],), ops.shape(tokens)[1] - 1, "int32")

    remat = tower_remat

    def call(self, tokens):
        # Tokens may be cut to fewer than context_length positions after every row's pooled position
        # when `trims_after_pooled_position`: the causal mask makes the later positions irrelevant.
        check_token_shape(tokens.shape, self.context_length, allow_shorter=self.trims_after_pooled_position)
        x = self.token_embedding(tokens)
        x = x + ops.cast(self.positional_embedding[: ops.shape(tokens)[1]], x.dtype)
        x = self.ln_final(self.transformer(x))
        x = ops.take_along_axis(x, ops.cast(self.pooled_positions(tokens), "int32")[:, None, None], axis=1)[:, 0]
        x = ops.matmul(x, ops.cast(self.text_projection, x.dtype))
        return x + ops.cast(self.text_projection_bias, x.dtype) if self.projection_bias else x

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
            mlp_width=self.mlp_width,
            activation=self.activation,
            layer_norm_epsilon=self.layer_norm_epsilon,
            causal=self.causal,
            pooling=self.pooling,
            eos_token_id=self.eos_token_id,
            projection_bias=self.projection_bias,
            remat=self.remat,
        )
        return config
