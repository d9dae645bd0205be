"""One check every Keras layer of the package passes: config round trip, .keras saving, tf.data use."""

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf


def run_layer_checks(layer_class, init_kwargs, input_data, expected_output_shape, atol=1e-6):
    """Build `layer_class(**init_kwargs)`, call it, and check what every public layer must do.

    - `get_config` holds the constructor arguments and `from_config` rebuilds an equal layer;
    - a functional model around it saves to `.keras` and reloads with identical outputs;
    - the layer runs inside `tf.data.Dataset.map` with the eager result.

    Returns the layer's eager output (numpy) for further checks.
    """
    layer = layer_class(**init_kwargs)
    output = np.asarray(layer(input_data))
    assert output.shape == tuple(expected_output_shape), (output.shape, expected_output_shape)

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
    before = np.asarray(model(input_data))
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "model.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(reloaded(input_data)), before, atol=atol, rtol=0)

    dataset = tf.data.Dataset.from_tensor_slices(input_data).batch(len(input_data)).map(layer)
    np.testing.assert_allclose(next(iter(dataset)).numpy(), output, atol=atol, rtol=0)
    return output
