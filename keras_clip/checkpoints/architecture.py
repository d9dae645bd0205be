"""The `CLIP` arguments of a state dict in OpenAI's naming: read from its shapes, combined with a config.

The shapes tell the sizes (as OpenAI's `build_model` reads them); a publisher's config tells what they cannot
(heads, activation, LayerNorm epsilon, pooling) and must agree with them on the sizes both state.
"""

import numpy as np

from keras_clip.errors import StateDictError
from keras_clip.models.temperature import SIGLIP_INIT_LOGIT_BIAS, SIGLIP_INIT_LOGIT_SCALE

# Keys some OpenAI checkpoints carry besides parameters; OpenAI's build_model drops them too.
METADATA_KEYS = ("input_resolution", "context_length", "vocab_size")


def _shape(state_dict, key):
    if key not in state_dict:
        raise StateDictError(f"Not a CLIP state dict: the key {key!r} is missing")
    return tuple(np.shape(state_dict[key]))


def _count_blocks(state_dict, prefix):
    """Number of distinct `prefix<i>.` indices, e.g. blocks of `transformer.resblocks.`."""
    return len({key[len(prefix):].split(".")[0] for key in state_dict if key.startswith(prefix)})


def infer_architecture(state_dict):
    """The CLIP constructor arguments that a state dict's shapes describe.

    Args:
        state_dict: mapping of OpenAI parameter names to arrays.

    Returns:
        A dict of `keras_clip.CLIP` constructor arguments.
    """
    if "visual.proj" in state_dict:
        vision_width, _, vision_patch_size, _ = _shape(state_dict, "visual.conv1.weight")
        vision_layers = _count_blocks(state_dict, "visual.transformer.resblocks.")
        grid_size = round((_shape(state_dict, "visual.positional_embedding")[0] - 1) ** 0.5)
        image_resolution = vision_patch_size * grid_size
    elif "visual.attn_pool.probe" in state_dict:  # SigLIP: no class token, attention pooling, no projection
        vision_width, _, vision_patch_size, _ = _shape(state_dict, "visual.conv1.weight")
        vision_layers = _count_blocks(state_dict, "visual.transformer.resblocks.")
        positions = _shape(state_dict, "visual.positional_embedding")[0]
        grid_size = round(positions**0.5)
        if grid_size**2 != positions:
            raise StateDictError(f"visual.positional_embedding has {positions} positions, not a square grid")
        image_resolution = vision_patch_size * grid_size
    elif "visual.layer1.0.conv1.weight" in state_dict:
        vision_layers = tuple(_count_blocks(state_dict, f"visual.layer{stage}.") for stage in (1, 2, 3, 4))
        vision_width = _shape(state_dict, "visual.layer1.0.conv1.weight")[0]
        positions = _shape(state_dict, "visual.attnpool.positional_embedding")[0]
        output_width = round((positions - 1) ** 0.5)
        if output_width**2 + 1 != positions:
            raise StateDictError(
                f"visual.attnpool.positional_embedding has {positions} positions, not a square grid plus one"
            )
        vision_patch_size = None
        image_resolution = output_width * 32
    else:
        raise StateDictError(
            "Unknown architecture: the state dict has no ViT image tower ('visual.proj', or SigLIP's "
            "'visual.attn_pool.probe') and no ModifiedResNet one ('visual.layer1.0.conv1.weight'); is this a CLIP "
            "or SigLIP checkpoint?"
        )
    transformer_width = _shape(state_dict, "ln_final.weight")[0]
    config = dict(
        embed_dim=_shape(state_dict, "text_projection")[1],
        image_resolution=image_resolution,
        vision_layers=vision_layers,
        vision_width=vision_width,
        vision_patch_size=vision_patch_size,
        context_length=_shape(state_dict, "positional_embedding")[0],
        vocab_size=_shape(state_dict, "token_embedding.weight")[0],
        transformer_width=transformer_width,
        transformer_heads=transformer_width // 64,
        transformer_layers=_count_blocks(state_dict, "transformer.resblocks."),
    )
    if "visual.attn_pool.probe" in state_dict:
        # Every SigLIP shares these; the weights cannot tell them (nor the heads: see `model_for_state_dict`).
        config.update(image_pooling="map", activation="gelu_tanh", layer_norm_epsilon=1e-6, text_causal=False,
                      text_pooling="last", init_logit_scale=SIGLIP_INIT_LOGIT_SCALE)  # fmt: skip
    if "text_projection_bias" in state_dict:
        config["text_projection_bias"] = True
    if "logit_bias" in state_dict:
        config["init_logit_bias"] = SIGLIP_INIT_LOGIT_BIAS
    # MLP widths are in the weights; heads, activation and LayerNorm epsilon are not (see `model_for_state_dict`).
    if "transformer.resblocks.0.mlp.c_fc.weight" in state_dict:
        config["transformer_mlp_width"] = _shape(state_dict, "transformer.resblocks.0.mlp.c_fc.weight")[0]
    if "visual.transformer.resblocks.0.mlp.c_fc.weight" in state_dict:
        config["vision_mlp_width"] = _shape(state_dict, "visual.transformer.resblocks.0.mlp.c_fc.weight")[0]
    return config


def check_metadata(state_dict, config):
    expected = {
        "input_resolution": config["image_resolution"],
        "context_length": config["context_length"],
        "vocab_size": config["vocab_size"],
    }
    for key in METADATA_KEYS:
        if key in state_dict and int(np.asarray(state_dict[key])) != expected[key]:
            raise StateDictError(
                f"The state dict says {key}={int(np.asarray(state_dict[key]))} but its weights describe {expected[key]}"
            )


# Arguments the weights' shapes tell (the heads they do not: only their product with the head width).
SHAPE_KEYS = ("embed_dim", "image_resolution", "vision_layers", "vision_width", "vision_patch_size",
              "context_length", "vocab_size", "transformer_width", "transformer_layers", "vision_mlp_width",
              "transformer_mlp_width")  # fmt: skip


def with_architecture(weights_config, architecture):
    """`weights_config` (`CLIP` arguments read from weights) updated by `architecture` (a config's).

    Raises:
        StateDictError: `architecture` states a size the weights do not have (named).
    """
    config = dict(weights_config)
    for key, value in (architecture or {}).items():
        if key in SHAPE_KEYS and key in config and _normalized(value) != _normalized(config[key]):
            if key == "image_resolution" and _same_patch_grid(value, config):
                config[key] = value
                continue
            raise StateDictError(f"The config says {key}={value!r} but the weights describe {config[key]!r}")
        config[key] = value
    return config


def _same_patch_grid(image_resolution, config):
    """Whether a ViT of `config` sees `image_resolution` as the same grid of patches (SigLIP So400m/14 at 384)."""
    patch_size = config.get("vision_patch_size")
    return bool(patch_size) and image_resolution // patch_size == config["image_resolution"] // patch_size


def _normalized(value):
    return tuple(value) if isinstance(value, list) else value


def same_architecture(first, second):
    """Whether two dicts of `CLIP` arguments are equal (a list and a tuple of the same ints are)."""
    return {key: _normalized(value) for key, value in first.items()} == {
        key: _normalized(value) for key, value in second.items()
    }
