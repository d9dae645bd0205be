"""keras_clip.training.optimizer's AdamW: Keras' AdamW updates, with each variable's decay after its gradient."""

import keras
import numpy as np
import tensorflow as tf

import keras_clip
from keras_clip.training.optimizer import AdamW, no_weight_decay_variables
from tests.helpers.model_inputs import random_images, random_tokens
from tests.helpers.tiny_models import TINY_VIT, tiny_clip


def test_updates_are_keras_adamw():
    batch = {"images": random_images(4, 32), "tokens": random_tokens(4)}
    dataset = tf.data.Dataset.from_tensors(batch).repeat(3)
    weights = []
    for adamw_class in (keras.optimizers.AdamW, AdamW):
        model = tiny_clip(seed=0)
        schedule = keras.optimizers.schedules.CosineDecay(0.0, 4, warmup_target=1e-2, warmup_steps=2)
        adamw = adamw_class(learning_rate=schedule, weight_decay=0.2, beta_2=0.98, epsilon=1e-6)
        adamw.exclude_from_weight_decay(var_list=no_weight_decay_variables(model))
        model.compile(optimizer=adamw)
        model.fit(dataset, epochs=1, steps_per_epoch=3, verbose=0)
        weights.append([np.asarray(weight.value) for weight in model.weights])
    moved = 0
    for ours, theirs, initial in zip(weights[1], weights[0], tiny_clip(seed=0).weights):
        np.testing.assert_allclose(ours, theirs, atol=1e-6)
        moved += int(not np.allclose(theirs, np.asarray(initial.value)))
    assert moved > len(weights[0]) // 2


def ancestors(op):
    """Names of the ops `op` depends on, through data or control edges."""
    seen, stack = set(), [t.op for t in op.inputs] + list(op.control_inputs)
    while stack:
        op = stack.pop()
        if op.name not in seen:
            seen.add(op.name)
            stack.extend([t.op for t in op.inputs] + list(op.control_inputs))
    return seen


def test_weight_decay_waits_for_the_gradient():
    model = keras_clip.CLIP(**TINY_VIT)
    adamw = keras_clip.training.optimizer(model)
    adamw.build(model.trainable_variables)
    decayed = [v for v in model.trainable_variables if adamw._use_weight_decay(v)]
    assert decayed

    @tf.function
    def apply(gradients):
        adamw.apply_gradients(zip(gradients, decayed))

    graph = apply.get_concrete_function([tf.TensorSpec(v.shape, v.dtype) for v in decayed]).graph
    gradient_names = [t.op.name for t in graph.inputs[: len(decayed)]]
    internal = {id(external): placeholder.op.name for external, placeholder in graph.captures}
    gradient_of_handle = {internal[id(v.value.handle)]: name for v, name in zip(decayed, gradient_names)}
    updates = [op for op in graph.get_operations()
               if op.type == "AssignSubVariableOp" and op.inputs[0].op.name in gradient_of_handle]  # fmt: skip
    assert len(updates) >= 2 * len(decayed)  # the decay and Adam's step of each variable
    for update in updates:
        assert gradient_of_handle[update.inputs[0].op.name] in ancestors(update), update.name
