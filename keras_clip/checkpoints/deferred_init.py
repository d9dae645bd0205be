"""Building a model whose every weight is about to be overwritten, without random initial values.

Creating a CLIP draws random initial values for all its weights (seconds for ViT-B/32, more
than loading the real ones). Inside a `keras.StatelessScope`, Keras defers variable creation
and records assignments instead of applying them; `build_with_assigned_values` then hands each
variable its recorded value as its initial value, so the random draw never happens. Variables
nothing was assigned to (if any) are initialised as usual.

This relies on two details of Keras 3 (`StatelessScope.state_mapping`, `Variable._initializer`);
where they are missing, or inside another stateless scope, the build simply runs normally.
"""

import keras

from keras_clip.errors import StateDictError


class _Value:
    """An initializer that returns a given tensor."""

    def __init__(self, value):
        self.value = value

    def __call__(self, shape, dtype=None):
        value = self.value
        self.value = None  # the variable keeps its own copy; let this one go
        if tuple(value.shape) != tuple(shape):
            raise StateDictError(f"Recorded value of shape {tuple(value.shape)} for a variable of shape {tuple(shape)}")
        return keras.ops.cast(value, dtype) if dtype is not None else value


def _supported():
    from keras.src.backend.common.stateless_scope import in_stateless_scope

    return not in_stateless_scope() and hasattr(keras.StatelessScope(), "state_mapping")


def build_with_assigned_values(build):
    """`build()` (which creates a model and assigns its weights), minus the random initialisation.

    Args:
        build: a function of no arguments that creates a Keras model and assigns its weights
            (e.g. `lambda: build_model(state_dict)`); it must not read weights it has not assigned.

    Returns:
        What `build` returned, its variables holding the assigned values.

    Example:
    >>> model = build_with_assigned_values(lambda: build_model(state_dict))
    """
    if not _supported():
        return build()
    with keras.StatelessScope() as scope:
        model = build()
        for variable in model.variables:
            value = scope.state_mapping.pop(id(variable), None)
            if value is not None and getattr(variable, "_value", None) is None:
                variable._initializer = _Value(value)
        scope.state_mapping.clear()
    # Leaving the scope initialises every deferred variable from its initializer: ours with their values.
    return model
