"""Hugging Face transformers `CLIPModel` and `SiglipModel` parameter names mapped to OpenAI's.

transformers splits each attention's input projection into `q_proj`, `k_proj`, `v_proj`
(OpenAI: one `in_proj_weight` [3 * width, width], rows q, k, v) and stores the two output
projections as Linear weights [embed_dim, width] (OpenAI: `visual.proj`, `text_projection`
[width, embed_dim], used as `x @ proj`). Everything else is a rename. transformers' CLIP has
only the ViT image tower.

SigLIP's parts have no OpenAI name; they get names in OpenAI's style: `visual.conv1.bias`,
`visual.attn_pool.*` (the attention-pooling head: `probe`, `in_proj_weight` as
`torch.nn.MultiheadAttention` stores it, `out_proj`, `ln`, `mlp.c_fc`, `mlp.c_proj`),
`text_projection_bias` and `logit_bias`.

Example:
>>> openai_state_dict = hf_to_openai(hf_state_dict)
>>> model = build_model(openai_state_dict)
"""

import re

import numpy as np

from keras_clip.checkpoints.stored_array import DerivedArray
from keras_clip.errors import StateDictError

# Buffers transformers saves that OpenAI's model computes instead.
IGNORED_KEYS = ("text_model.embeddings.position_ids", "vision_model.embeddings.position_ids")

RENAMES = {
    "logit_scale": "logit_scale",
    "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
    "text_model.embeddings.position_embedding.weight": "positional_embedding",
    "text_model.final_layer_norm.weight": "ln_final.weight",
    "text_model.final_layer_norm.bias": "ln_final.bias",
    "vision_model.embeddings.class_embedding": "visual.class_embedding",
    "vision_model.embeddings.patch_embedding.weight": "visual.conv1.weight",
    "vision_model.embeddings.position_embedding.weight": "visual.positional_embedding",
    "vision_model.pre_layrnorm.weight": "visual.ln_pre.weight",  # sic: transformers' spelling
    "vision_model.pre_layrnorm.bias": "visual.ln_pre.bias",
    "vision_model.post_layernorm.weight": "visual.ln_post.weight",
    "vision_model.post_layernorm.bias": "visual.ln_post.bias",
    # SigLIP
    "logit_bias": "logit_bias",
    "vision_model.embeddings.patch_embedding.bias": "visual.conv1.bias",
    "vision_model.head.probe": "visual.attn_pool.probe",
    "vision_model.head.attention.in_proj_weight": "visual.attn_pool.in_proj_weight",
    "vision_model.head.attention.in_proj_bias": "visual.attn_pool.in_proj_bias",
    "vision_model.head.attention.out_proj.weight": "visual.attn_pool.out_proj.weight",
    "vision_model.head.attention.out_proj.bias": "visual.attn_pool.out_proj.bias",
    "vision_model.head.layernorm.weight": "visual.attn_pool.ln.weight",
    "vision_model.head.layernorm.bias": "visual.attn_pool.ln.bias",
    "vision_model.head.mlp.fc1.weight": "visual.attn_pool.mlp.c_fc.weight",
    "vision_model.head.mlp.fc1.bias": "visual.attn_pool.mlp.c_fc.bias",
    "vision_model.head.mlp.fc2.weight": "visual.attn_pool.mlp.c_proj.weight",
    "vision_model.head.mlp.fc2.bias": "visual.attn_pool.mlp.c_proj.bias",
    "text_model.head.bias": "text_projection_bias",
}
TRANSPOSED = {"visual_projection.weight": "visual.proj", "text_projection.weight": "text_projection",
              "text_model.head.weight": "text_projection"}  # fmt: skip
LAYER_RENAMES = {
    "self_attn.out_proj": "attn.out_proj",
    "layer_norm1": "ln_1",
    "layer_norm2": "ln_2",
    "mlp.fc1": "mlp.c_fc",
    "mlp.fc2": "mlp.c_proj",
}
TOWERS = {
    "text_model.encoder.layers.": "transformer.resblocks.",
    "vision_model.encoder.layers.": "visual.transformer.resblocks.",
}
LAYER_KEY = re.compile(r"^(?P<tower>(?:text|vision)_model\.encoder\.layers\.)(?P<index>\d+)\.(?P<rest>.+)$")


def is_hf_clip(state_dict):
    """Whether a state dict uses transformers' `CLIPModel` names."""
    return any(key.startswith(("text_model.", "vision_model.")) for key in state_dict)


def _concatenated(parts):
    shape = (sum(part.shape[0] for part in parts),) + tuple(parts[0].shape[1:])
    return DerivedArray(shape, parts[0].dtype, lambda: np.concatenate([np.asarray(part) for part in parts]))


def _transposed(array):
    return DerivedArray(tuple(reversed(array.shape)), array.dtype, lambda: np.asarray(array).T)


def hf_to_openai(state_dict):
    """An OpenAI-named state dict with the same arrays (q/k/v joined, projections transposed lazily).

    Keys that have no OpenAI counterpart are kept under their own names, so that
    `build_model` reports them as unexpected.

    Raises:
        StateDictError: an attention layer lacks one of its q, k, v parts.
    """
    result = {}
    attention = {}  # (openai block prefix, "weight" | "bias") -> {"q": ..., "k": ..., "v": ...}
    hf_blocks = {}  # openai block prefix -> transformers' prefix, for error messages
    for key, value in state_dict.items():
        if key in IGNORED_KEYS:
            continue
        if key in RENAMES:
            result[RENAMES[key]] = value
            continue
        if key in TRANSPOSED:
            result[TRANSPOSED[key]] = _transposed(value)
            continue
        match = LAYER_KEY.match(key)
        if match is None:
            result[key] = value
            continue
        block = TOWERS[match["tower"]] + match["index"]
        hf_blocks[block] = match["tower"] + match["index"]
        rest = match["rest"]
        projection = re.match(r"^self_attn\.(?P<part>[qkv])_proj\.(?P<kind>weight|bias)$", rest)
        if projection:
            attention.setdefault((block, projection["kind"]), {})[projection["part"]] = value
            continue
        for hf_name, openai_name in LAYER_RENAMES.items():
            if rest.startswith(hf_name + "."):
                result[f"{block}.{openai_name}{rest[len(hf_name):]}"] = value
                break
        else:
            result[key] = value
    for (block, kind), parts in sorted(attention.items()):
        missing = [part for part in "qkv" if part not in parts]
        if missing:
            names = ", ".join(f"{hf_blocks[block]}.self_attn.{part}_proj.{kind}" for part in missing)
            raise StateDictError(f"The Hugging Face state dict is missing {names}")
        result[f"{block}.attn.in_proj_{kind}"] = _concatenated([parts["q"], parts["k"], parts["v"]])
    return result
