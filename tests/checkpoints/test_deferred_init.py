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


def test_random_ops_work_afterwards_in_a_fresh_process():
    # Keras creates its global seed generator lazily: if that happened inside the scope, it must
    # still be initialised on the way out.
    result = checkpoint_files.run_without_torch(
        """
        import keras, numpy as np
        from keras_clip.checkpoints.deferred_init import build_with_assigned_values
        from keras_clip.model import CLIP
        config = dict(embed_dim=8, image_resolution=32, vision_layers=1, vision_width=64, vision_patch_size=16,
                      context_length=77, vocab_size=49408, transformer_width=64, transformer_heads=1,
                      transformer_layers=1)
        model = build_with_assigned_values(lambda: CLIP(**config))
        print(keras.random.normal((3,)).shape, keras.layers.Dropout(0.5)(np.ones((2, 4)), training=True).shape)
        print("OK")
        """
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK" in result.stdout
