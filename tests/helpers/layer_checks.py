"""One check every public Keras layer of the package passes (tests/layers/test_public_layers.py runs it on each)."""

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

# bfloat16 keeps 8 bits of mantissa: outputs of a mixed-precision call stay within this fraction of
# the float32 output's largest magnitude.
MIXED_PRECISION_TOLERANCE = 0.05


def trainable_parameters(layer):
    """Trainable scalars (what torch's `parameters()` counts; Keras' count_params adds BatchNorm statistics)."""
    return int(sum(np.prod(weight.shape) for weight in layer.trainable_weights))


def run_layer_checks(layer_class, init_kwargs, input_data, expected_output_shape, expected_parameters=0, atol=1e-6):
    """Build `layer_class(**init_kwargs)`, call it, and check what every public layer must do.

    - its output has the expected shape, and its trainable parameters number `expected_parameters`;
    - `get_config` holds the constructor arguments and `from_config` rebuilds an equal layer;
    - a functional model around it saves to `.keras` and reloads with identical outputs;
    - the layer runs inside `tf.data.Dataset.map` with the eager result;
    - under the "mixed_bfloat16" policy, with the same weights, it gives the float32 output within
      `MIXED_PRECISION_TOLERANCE` (integer outputs exactly).

    Returns the layer's eager output (numpy) for further checks.
    """
    layer = layer_class(**init_kwargs)
    output = np.asarray(layer(input_data))
    assert output.shape == tuple(expected_output_shape), (output.shape, expected_output_shape)
    assert trainable_parameters(layer) == expected_parameters, (trainable_parameters(layer), expected_parameters)

    config = layer.get_config()
    for key, value in init_kwargs.items():
        assert key in config, f"get_config of {layer_class.__name__} lacks constructor argument {key!r}"
        if isinstance(value, tuple):
            value = list(value)
        stored = list(config[key]) if isinstance(config[key], tuple) else config[key]
        assert stored == value, (key, stored, value)
    clone = layer_class.from_config(config)
    assert clone.get_config() == config

    inputs = keras.Input(shape=input_data.shape[1:], dtype=input_data.dtype, batch_size=None)
    model = keras.Model(inputs, layer_class(**init_kwargs)(inputs))
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(reloaded(input_data)), np.asarray(model(input_data)), atol=atol, rtol=0)

    def twin(**dtype):
        """A new layer like `layer`: its weights copied (a random layer without weights: the same seed)."""
        new = layer_class(**init_kwargs, **dtype)
        if layer.weights:
            new(input_data)
            new.set_weights(layer.get_weights())
        return new

    dataset = tf.data.Dataset.from_tensor_slices(input_data).batch(len(input_data)).map(twin())
    np.testing.assert_allclose(next(iter(dataset)).numpy(), np.asarray(twin()(input_data)), atol=atol, rtol=0)

    expected = np.asarray(twin()(input_data))
    mixed_output = np.asarray(tf.cast(twin(dtype="mixed_bfloat16")(input_data), expected.dtype))
    if np.issubdtype(expected.dtype, np.integer):
        np.testing.assert_array_equal(mixed_output, expected)
    else:
        scale = max(float(np.abs(expected).max()), 1e-6)
        np.testing.assert_allclose(mixed_output, expected, atol=MIXED_PRECISION_TOLERANCE * scale, rtol=0)
    return output
