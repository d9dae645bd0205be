"""Building with assigned values instead of random ones gives the same model, and leaves Keras sane."""

import keras
import numpy as np

import keras_clip
from keras_clip.checkpoints.deferred_init import build_with_assigned_values
from tests.helpers import checkpoint_files


def test_same_weights_as_an_ordinary_build():
    _, state_dict = checkpoint_files.reference_state_dict(checkpoint_files.SMALL_RESNET, seed=20)
    ordinary = keras_clip.build_model(state_dict)
    deferred = build_with_assigned_values(lambda: keras_clip.build_model(state_dict))
    assert [v.path.split("/", 1)[-1] for v in deferred.weights] == [v.path.split("/", 1)[-1] for v in ordinary.weights]
    for expected, actual in zip(ordinary.weights, deferred.weights):
        np.testing.assert_array_equal(actual.numpy(), expected.numpy())
    deferred.logit_scale.assign(1.0)  # variables are ordinary ones afterwards
    assert float(deferred.logit_scale.numpy()) == 1.0


def test_unassigned_variables_get_their_initializers():
    def build():
        model = keras_clip.CLIP(**checkpoint_files.SMALL_VIT)
        model.logit_scale.assign(2.0)
        return model

    model = build_with_assigned_values(build)
    assert float(model.logit_scale.numpy()) == 2.0
    kernel = model.visual.conv1.kernel.numpy()
    assert np.isfinite(kernel).all() and kernel.std() > 0


def test_inside_another_stateless_scope_it_builds_normally():
    with keras.StatelessScope():
        model = build_with_assigned_values(lambda: keras.layers.Dense(2))
    assert isinstance(model, keras.layers.Dense)


# Keras' random ops after deferred builds in a fresh process: checked in test_load.py's torch-free run.
