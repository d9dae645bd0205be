"""Rematerialisation (gradient checkpointing) of one residual block."""

import keras
import tensorflow as tf


def rematerialized_call(block, inputs, training=None):
    """`block(inputs, training=training)`, keeping only the block's input for the backward pass.

    The backward pass runs the block again to get the activations it needs, so a stack of blocks
    keeps one tensor per block instead of all of its attention scores and MLP activations: less
    memory for about one more forward pass. The outputs and gradients are those of the plain call.

    Unlike `tf.recompute_grad` (`keras.remat` on TensorFlow), the gradient passed on to the previous
    block waits for this block's weight gradients. Otherwise TensorFlow's executor, with two towers'
    backward passes in flight, runs the weight gradients late and keeps every recomputed block's
    activations until then: remat then saved a third of the memory on ViT-B/32 instead of most of it.
    The recomputation runs in a `keras.StatelessScope`, so state the block updates (BatchNormalization's
    moving statistics) is updated once per step, by the forward pass.

    Args:
        block: a Keras layer whose output depends only on its input and weights (no randomness).
        inputs: the block's input tensor.
        training: passed on to the block.

    Example:
    >>> block = ResidualAttentionBlock(width=64, num_heads=4)
    >>> rematerialized_call(block, np.zeros((2, 10, 64), "float32"), training=True).shape
    TensorShape([2, 10, 64])
    """
    recomputing = []

    def run(x):
        if recomputing:
            with keras.StatelessScope():
                return block(x, training=training)
        return block(x, training=training)

    @tf.custom_gradient
    def checkpointed(x):
        output = run(x)

        def gradient(output_gradient, variables=None):
            recomputing.append(True)
            variables = list(variables or [])
            with tf.control_dependencies([output_gradient]):  # recompute only when the gradient is due
                x_again = tf.identity(x)
            with tf.GradientTape() as tape:
                tape.watch(x_again)
                tape.watch(variables)
                recomputed = run(x_again)
            gradients = tape.gradient(recomputed, [x_again] + variables, output_gradients=output_gradient,
                                      unconnected_gradients=tf.UnconnectedGradients.ZERO)  # fmt: skip
            input_gradient, variable_gradients = gradients[0], gradients[1:]
            with tf.control_dependencies(variable_gradients):
                input_gradient = tf.identity(input_gradient)
            return input_gradient, variable_gradients

        return output, gradient

    return checkpointed(inputs)
