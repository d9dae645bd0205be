"""The architecture and preprocessing a checkpoint's publisher config states, as keras_clip's arguments.

- transformers' `config.json` (`CLIPModel`, `SiglipModel`): sizes, `hidden_act`, heads, `intermediate_size`,
  `layer_norm_eps`, `eos_token_id`; and `preprocessor_config.json` (mean, std, resampling, sizes).
- open_clip's `open_clip_config.json`: `model_cfg` (its `CLIPVisionCfg` / `CLIPTextCfg` fields and
  `quick_gelu`) and `preprocess_cfg` (mean, std, interpolation, resize mode).

Every value keras_clip cannot honour is a `CheckpointError` that names it: a model never loads with
silently different behaviour. Values that only matter for training (dropout, initialisation) are ignored.
"""

from keras_clip.errors import CheckpointError
from keras_clip.models.temperature import SIGLIP_INIT_LOGIT_BIAS, SIGLIP_INIT_LOGIT_SCALE
from keras_clip.image.settings import Preprocessing

# transformers' activation names -> ours ("gelu" is the exact erf GELU in transformers and torch).
TRANSFORMERS_ACTIVATIONS = {"quick_gelu": "quick_gelu", "gelu": "gelu", "gelu_new": "gelu_tanh",
                            "gelu_pytorch_tanh": "gelu_tanh"}  # fmt: skip
# PIL resampling filter codes (transformers' `resample`) -> our interpolation names.
PIL_FILTERS = {2: "bilinear", 3: "bicubic"}
# Fields of open_clip's configs that must keep their default value (anything else changes the model).
OPEN_CLIP_VISION_DEFAULTS = {
    "ls_init_value": None, "attentional_pool": False, "no_ln_pre": False, "pos_embed_type": "learnable",
    "final_ln_after_pool": False, "pool_type": "tok", "act_kwargs": None, "timm_model_name": None,
    "block_type": None, "qk_norm": False, "scaled_cosine_attn": False, "scale_heads": False,
    "scale_attn_inner": False, "scale_attn": False, "scale_fc": False, "image_seq_len": None,
}  # fmt: skip
OPEN_CLIP_TEXT_DEFAULTS = {
    "text_arch": "clip", "hf_model_name": None, "hf_tokenizer_name": None, "tokenizer_mode": None,
    "ls_init_value": None, "embed_cls": False, "final_ln_after_pool": False, "proj_type": "linear",
    "act_kwargs": None, "block_type": None, "qk_norm": False, "scaled_cosine_attn": False, "scale_heads": False,
    "scale_attn_inner": False, "scale_attn": False, "scale_fc": False, "tokenizer_type": "", "variable_text": False,
}  # fmt: skip
# Read, or only about training: dropout, initialisation, what the model returns, precision.
OPEN_CLIP_TRAINING_ONLY = {"patch_dropout", "output_tokens", "timm_model_pretrained", "init_logit_scale",
                           "cast_dtype", "pad_id", "bos_id", "attn_pooler_queries", "attn_pooler_heads"}  # fmt: skip


def _unsupported(source, key, value, expected):
    raise CheckpointError(f"{source}: {key}={value!r} is not supported by keras_clip (only {expected!r} is)")


def _check_defaults(section, defaults, source, prefix):
    for key, value in section.items():
        if key in defaults and value != defaults[key] and not (value in (None, "default") and defaults[key] is None):
            _unsupported(source, prefix + key, value, defaults[key])


def _layer_norm_epsilon(section, source, prefix):
    norm_kwargs = section.get("norm_kwargs") or {}
    extra = set(norm_kwargs) - {"eps"}
    if extra:
        _unsupported(source, f"{prefix}norm_kwargs", norm_kwargs, {"eps": 1e-5})
    return norm_kwargs.get("eps", 1e-5)


# transformers' defaults where config.json leaves a field out (`CLIPConfig`'s, then `SiglipConfig`'s).
CLIP_DEFAULTS = dict(hidden_act="quick_gelu", layer_norm_eps=1e-5, projection_dim=512, image_size=224, patch_size=32,
                     max_position_embeddings=77, vocab_size=49408, text_hidden_size=512, text_heads=8,
                     text_intermediate_size=2048)  # fmt: skip
SIGLIP_DEFAULTS = dict(hidden_act="gelu_pytorch_tanh", layer_norm_eps=1e-6, image_size=224, patch_size=16,
                       max_position_embeddings=64, vocab_size=32000, text_hidden_size=768, text_heads=12,
                       text_intermediate_size=3072)  # fmt: skip


def transformers_architecture(config, source="config.json"):
    """`keras_clip.CLIP` arguments of a transformers `CLIPConfig` or `SiglipConfig` (the dict of its config.json).

    Raises:
        CheckpointError: neither a CLIP nor a SigLIP config, or a value keras_clip cannot honour (named).
    """
    model_type = config.get("model_type")
    if model_type not in (None, "clip", "siglip"):
        raise CheckpointError(
            f"{source}: model_type {model_type!r} is neither a CLIP nor a SigLIP (expected 'clip' or 'siglip'; "
            "SigLIP 2's variable-resolution NaFlex models, 'siglip2', are not supported)"
        )
    siglip = model_type == "siglip"
    text, vision = config.get("text_config") or {}, config.get("vision_config") or {}
    defaults = SIGLIP_DEFAULTS if siglip else CLIP_DEFAULTS
    if siglip and not vision.get("vision_use_head", True):
        _unsupported(source, "vision_config.vision_use_head", False, True)
    activations = {TRANSFORMERS_ACTIVATIONS.get(tower.get("hidden_act", defaults["hidden_act"]))
                   for tower in (text, vision)}  # fmt: skip
    if None in activations or len(activations) != 1:
        _unsupported(source, "hidden_act", [tower.get("hidden_act") for tower in (text, vision)],
                     "the same one of " + ", ".join(TRANSFORMERS_ACTIVATIONS) + " in both towers")  # fmt: skip
    epsilons = {tower.get("layer_norm_eps", defaults["layer_norm_eps"]) for tower in (text, vision)}
    if len(epsilons) != 1:
        _unsupported(source, "layer_norm_eps", sorted(epsilons), "the same value in both towers")
    vision_width = vision.get("hidden_size", 768)
    text_width = text.get("hidden_size", defaults["text_hidden_size"])
    architecture = dict(
        embed_dim=text.get("projection_size") or text_width if siglip else config.get("projection_dim", 512),
        image_resolution=_square(vision.get("image_size", defaults["image_size"]), source, "image_size"),
        vision_layers=vision.get("num_hidden_layers", 12),
        vision_width=vision_width,
        vision_patch_size=_square(vision.get("patch_size", defaults["patch_size"]), source, "patch_size"),
        context_length=text.get("max_position_embeddings", defaults["max_position_embeddings"]),
        vocab_size=text.get("vocab_size", defaults["vocab_size"]),
        transformer_width=text_width,
        transformer_heads=text.get("num_attention_heads", defaults["text_heads"]),
        transformer_layers=text.get("num_hidden_layers", 12),
        vision_heads=vision.get("num_attention_heads", 12),
        vision_mlp_width=vision.get("intermediate_size", 3072),
        transformer_mlp_width=text.get("intermediate_size", defaults["text_intermediate_size"]),
        activation=activations.pop(),
        layer_norm_epsilon=epsilons.pop(),
    )
    if siglip:
        # SiglipModel: attention pooling, bidirectional text pooled at the last position, biased projection.
        architecture.update(image_pooling="map", text_causal=False, text_pooling="last", text_projection_bias=True,
                            init_logit_scale=SIGLIP_INIT_LOGIT_SCALE,
                            init_logit_bias=SIGLIP_INIT_LOGIT_BIAS)  # fmt: skip
        return architecture
    eos_token_id = text.get("eos_token_id", 49407)
    # transformers pools at the argmax of the ids for the legacy eos_token_id 2, else at the first eos.
    if eos_token_id != 2:
        architecture.update(text_pooling="eos", eos_token_id=eos_token_id)
    return architecture


def _square(value, source, key):
    """An int size, or a [height, width] pair of equal sides."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2 or value[0] != value[1]:
            _unsupported(source, key, value, "a square size")
        return value[0]
    return value


def transformers_preprocessing(config, image_resolution, source="preprocessor_config.json"):
    """The `Preprocessing` of a transformers `CLIPImageProcessor` config (resize shorter side, centre crop)
    or `SiglipImageProcessor` config (resize to the square, no crop)."""
    resample = config.get("resample", 3)
    if resample not in PIL_FILTERS:
        _unsupported(source, "resample", resample, sorted(PIL_FILTERS))
    if config.get("image_processor_type", "").startswith("Siglip"):
        size = config.get("size", {})
        if not config.get("do_resize", True) or (size.get("height"), size.get("width")) != (image_resolution,) * 2:
            _unsupported(source, "size", size, {"height": image_resolution, "width": image_resolution})
        return Preprocessing(image_resolution, mean=tuple(config.get("image_mean", (0.5, 0.5, 0.5))),
                             std=tuple(config.get("image_std", (0.5, 0.5, 0.5))), interpolation=PIL_FILTERS[resample],
                             resize_mode="squash")  # fmt: skip
    crop = config.get("crop_size", image_resolution)
    crop = crop.get("height", image_resolution) if isinstance(crop, dict) else crop
    size = config.get("size", image_resolution)
    size = size.get("shortest_edge", image_resolution) if isinstance(size, dict) else size
    if not config.get("do_center_crop", True) or crop != image_resolution or size != image_resolution:
        _unsupported(source, "size/crop_size", (size, crop), f"shortest edge and centre crop of {image_resolution}")
    return Preprocessing(
        image_resolution,
        mean=tuple(config.get("image_mean", Preprocessing.mean)),
        std=tuple(config.get("image_std", Preprocessing.std)),
        interpolation=PIL_FILTERS[resample],
    )


def open_clip_architecture(model_cfg, source="open_clip_config.json"):
    """`keras_clip.CLIP` arguments of an open_clip `model_cfg` (as its model_configs/*.json hold them).

    Raises:
        CheckpointError: a tower keras_clip does not build (timm, Hugging Face text), or any value it
            cannot honour (named).
    """
    vision, text = dict(model_cfg.get("vision_cfg") or {}), dict(model_cfg.get("text_cfg") or {})
    _check_defaults(vision, OPEN_CLIP_VISION_DEFAULTS, source, "vision_cfg.")
    _check_defaults(text, OPEN_CLIP_TEXT_DEFAULTS, source, "text_cfg.")
    known_top = {"embed_dim", "quick_gelu", "vision_cfg", "text_cfg", "custom_text"} | OPEN_CLIP_TRAINING_ONLY
    for key, value in model_cfg.items():
        if key not in known_top and value not in (None, False):
            _unsupported(source, key, value, None)
    epsilons = {_layer_norm_epsilon(vision, source, "vision_cfg."), _layer_norm_epsilon(text, source, "text_cfg.")}
    if len(epsilons) != 1:
        _unsupported(source, "norm_kwargs.eps", sorted(epsilons), "the same value in both towers")
    layers = vision.get("layers", 12)
    width = vision.get("width", 768)
    head_width = vision.get("head_width", 64)
    resnet = isinstance(layers, (list, tuple))
    text_width = text.get("width", 512)
    architecture = dict(
        embed_dim=model_cfg["embed_dim"],
        image_resolution=vision.get("image_size", 224),
        vision_layers=tuple(layers) if resnet else layers,
        vision_width=width,
        vision_patch_size=None if resnet else vision.get("patch_size", 16),
        context_length=text.get("context_length", 77),
        vocab_size=text.get("vocab_size", 49408),
        transformer_width=text_width,
        transformer_heads=text.get("heads", 8),
        transformer_layers=text.get("layers", 12),
        vision_heads=(width * 32 if resnet else width) // head_width,
        vision_mlp_width=int(width * vision.get("mlp_ratio", 4.0)),
        transformer_mlp_width=int(text_width * text.get("mlp_ratio", 4.0)),
        activation="quick_gelu" if model_cfg.get("quick_gelu", False) else "gelu",
        layer_norm_epsilon=epsilons.pop(),
        text_causal=not text.get("no_causal_mask", False),
        text_projection_bias=bool(text.get("proj_bias", False)),
    )
    pooling = text.get("pool_type", "argmax")
    if pooling not in ("argmax", "eos", "last"):
        _unsupported(source, "text_cfg.pool_type", pooling, ("argmax", "eos", "last"))
    architecture["text_pooling"] = pooling
    if pooling == "eos":
        architecture["eos_token_id"] = text["eos_id"]
    return architecture


def open_clip_preprocessing(preprocess_cfg, image_resolution, source="open_clip_config.json"):
    """The `Preprocessing` of an open_clip `preprocess_cfg`."""
    config = dict(preprocess_cfg or {})
    interpolation = config.get("interpolation", "bicubic")
    if interpolation not in ("bicubic", "bilinear"):
        _unsupported(source, "preprocess_cfg.interpolation", interpolation, ("bicubic", "bilinear"))
    resize_mode = config.get("resize_mode", "shortest")
    if resize_mode not in ("shortest", "squash", "longest"):
        _unsupported(source, "preprocess_cfg.resize_mode", resize_mode, ("shortest", "squash", "longest"))
    size = config.get("size", image_resolution)
    size = size[0] if isinstance(size, (list, tuple)) else size
    if size != image_resolution:
        _unsupported(source, "preprocess_cfg.size", size, image_resolution)
    return Preprocessing(
        image_resolution,
        mean=tuple(config.get("mean", Preprocessing.mean)),
        std=tuple(config.get("std", Preprocessing.std)),
        interpolation=interpolation,
        resize_mode=resize_mode,
    )
