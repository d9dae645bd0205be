"""The CLIP paper's optimizer: AdamW with decoupled weight decay and a warmed-up cosine schedule."""

import keras


def no_weight_decay_variables(model):
    """Gains, biases, embeddings and the temperature: the variables CLIP trains without weight decay."""
    excluded = []
    for variable in model.trainable_weights:
        name = variable.path.split("/")[-1]
        if len(variable.shape) < 2 or "embedding" in name or name == "logit_scale":
            excluded.append(variable)
    return excluded


def optimizer(
    model,
    learning_rate=5e-4,
    total_steps=None,
    warmup_steps=2000,
    weight_decay=0.2,
    beta_1=0.9,
    beta_2=0.98,
    epsilon=1e-6,
    global_clipnorm=None,
):
    """AdamW with the CLIP paper's defaults for `model` (a `keras_clip.CLIP`).

    Weight decay is not applied to gains, biases, embeddings or `logit_scale`. With
    `total_steps`, the learning rate warms up linearly from 0 over `warmup_steps` and then
    follows a cosine decay to 0 at `total_steps`; without it, it is constant.

    Args:
        model: the model whose variables the optimizer will train.
        learning_rate: peak learning rate.
        total_steps: number of optimizer steps of the whole run (enables the schedule).
        warmup_steps: linear warm-up steps (capped at `total_steps`).
        weight_decay: decoupled weight decay (0.2 in the paper).
        beta_1, beta_2, epsilon: Adam's constants (0.9, 0.98, 1e-6 in the paper).
        global_clipnorm: clip the global gradient norm to this value (None: no clipping).

    Example:
    >>> model.compile(optimizer=keras_clip.training.optimizer(model, 5e-4, total_steps=10_000))
    """
    schedule = learning_rate
    if total_steps is not None:
        warmup_steps = min(warmup_steps, total_steps)
        schedule = keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=0.0 if warmup_steps else learning_rate,
            decay_steps=max(total_steps - warmup_steps, 1),
            alpha=0.0,
            warmup_target=learning_rate if warmup_steps else None,
            warmup_steps=warmup_steps,
        )
    adamw = keras.optimizers.AdamW(
        learning_rate=schedule,
        weight_decay=weight_decay,
        beta_1=beta_1,
        beta_2=beta_2,
        epsilon=epsilon,
        global_clipnorm=global_clipnorm,
    )
    adamw.exclude_from_weight_decay(var_list=no_weight_decay_variables(model))
    return adamw
