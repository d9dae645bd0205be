"""Eager calls of the towers run through one cached, compiled graph instead of op-by-op."""

import numpy as np
import tensorflow as tf

#: Token positions are cut to a multiple of this, which bounds the distinct shapes XLA compiles.
POSITION_MULTIPLE = 8


def used_token_positions(tokens, context_length, eos_token_id=None):
    """Leading positions of a token batch that a causal, EOT-pooled text tower needs.

    The text tower pools each row at its largest id (OpenAI's EOT), or at its first `eos_token_id`,
    and its attention is causal, so no position after the last pooled one of the batch can change the
    result. Rounded up to a multiple of `POSITION_MULTIPLE`, at most `context_length`.
    """
    if tokens.shape[0] == 0:
        return context_length
    tokens = np.asarray(tokens)
    pooled = np.argmax(tokens, axis=1) if eos_token_id is None else np.argmax(tokens == eos_token_id, axis=1)
    last = int(np.max(pooled)) + 1
    return min(context_length, -(-last // POSITION_MULTIPLE) * POSITION_MULTIPLE)


def is_eager_value(value):
    """True for numpy arrays, lists and eager tensors outside any tf.function being traced."""
    return tf.executing_eagerly() and not tf.is_symbolic_tensor(value) and not hasattr(value, "_keras_history")


class CompiledEncoder:
    """Calls `tower(x, training=False)` through one `tf.function`, traced once for every batch size.

    Inputs are converted to `input_spec.dtype` and run in chunks of at most `chunk_size` rows,
    which bounds the activations' memory for large arrays. With `jit_compile`, XLA compiles one
    program per distinct chunk shape, so the last partial chunk is padded up to a power of two:
    at most log2(chunk_size) + 1 compilations, whatever batch sizes the caller uses.

    Args:
        tower: a Keras layer mapping [N, ...] inputs to [N, D] features.
        input_spec: `tf.TensorSpec` of one batch, batch dimension None.
        output_dim: D, for the result of an empty batch.
        jit_compile: compile with XLA.
        chunk_size: rows per call of the compiled function.
        trim_tokens: inputs are token ids [N, context_length] of a causal text tower pooled at the EOT;
            positions after the batch's last EOT are cut before the call (see `used_token_positions`),
            which makes typical captions several times cheaper with the same result.
        eos_token_id: with `trim_tokens`, the EOT id the tower pools at (None: the largest id, OpenAI's).
    """

    def __init__(self, tower, input_spec, output_dim, jit_compile=False, chunk_size=64, trim_tokens=False,
                 eos_token_id=None):  # fmt: skip
        self.trim_tokens = trim_tokens
        self.eos_token_id = eos_token_id
        if trim_tokens:  # the graph takes any number of positions up to the context length
            self.context_length = input_spec.shape[1]
            input_spec = tf.TensorSpec((None, None), input_spec.dtype)
        self.input_spec = input_spec
        self.output_dim = output_dim
        self.jit_compile = jit_compile
        self.chunk_size = chunk_size
        self.function = tf.function(
            lambda inputs: tf.cast(tower(inputs, training=False), tf.float32),
            input_signature=[input_spec],
            jit_compile=jit_compile,
        )

    def _padded_size(self, rows):
        if not self.jit_compile:
            return rows
        size = 1
        while size < rows:
            size *= 2
        return min(size, self.chunk_size)

    def __call__(self, inputs):
        inputs = tf.convert_to_tensor(inputs)
        if inputs.dtype != self.input_spec.dtype:  # e.g. float64 numpy, or Keras' autocast to bfloat16
            inputs = tf.cast(inputs, self.input_spec.dtype)
        rows = int(inputs.shape[0])
        if rows == 0:
            return tf.zeros((0, self.output_dim), tf.float32)
        if self.trim_tokens:
            inputs = inputs[:, :used_token_positions(inputs, self.context_length, self.eos_token_id)]
        outputs = []
        for start in range(0, rows, self.chunk_size):
            chunk = inputs[start:start + self.chunk_size]
            count = int(chunk.shape[0])
            padding = self._padded_size(count) - count
            if padding:
                chunk = tf.concat([chunk, tf.zeros((padding,) + tuple(chunk.shape[1:]), chunk.dtype)], axis=0)
            outputs.append(self.function(chunk)[:count])
        return outputs[0] if len(outputs) == 1 else tf.concat(outputs, axis=0)

    def tracing_count(self):
        return self.function.experimental_get_tracing_count()
