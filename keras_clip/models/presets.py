"""Released CLIP models, as data: one record per checkpoint, and lookups by name.

Each `Preset` says what the checkpoint is (the `CLIP` constructor arguments), where its file is and how
to verify it, how images and texts must be prepared for it, and what its publisher reports. Everything
else in the package (`create_model`, `load`, the command line) reads this table; nothing here imports
TensorFlow, so `keras-clip models` answers at once.

Facts: OpenAI's `clip/clip.py` (URLs, SHA256) and paper; open_clip's `model_configs/*.json` (sizes),
`pretrained.py` (Hub repositories, activation, preprocessing) and `docs/openclip_results.csv` (sizes in
millions of parameters, zero-shot ImageNet top-1 as open_clip measured it). Tests check the table
against OpenAI's and open_clip's own files.
"""

import dataclasses
import types
from typing import Optional

from keras_clip.image.settings import Preprocessing

OPENAI_BASE_URL = "https://openaipublic.azureedge.net/clip/models"
INCEPTION = dict(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
# open_clip's file names on the Hugging Face Hub, in the order they are tried.
HUB_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")


@dataclasses.dataclass(frozen=True)
class CheckpointFile:
    """A checkpoint's file: at a URL (with its published SHA256) or in a Hugging Face Hub repository.

    Files on the Hub are verified against the SHA256 the Hub reports for them when they are downloaded.
    """

    file_name: str
    url: Optional[str] = None
    sha256: Optional[str] = None
    hub_repo: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class Preset:
    """One released checkpoint.

    Attributes:
        name: the name users type: OpenAI's spelling for OpenAI's releases ("ViT-B/32"), else open_clip's
            "<architecture>/<tag>" ("ViT-B-32/laion2b_s34b_b79k").
        architecture_name, tag: open_clip's names for it (`keras_clip.list_pretrained()`).
        architecture: `keras_clip.CLIP` constructor arguments (read-only; `dict(...)` it to change it).
        checkpoint: the published file.
        preprocessing: the image preprocessing the checkpoint was trained with.
        tokenizer: "clip_bpe" (OpenAI's byte-pair encoding), "siglip_sentencepiece" (SigLIP's 32,000 pieces)
            or "gemma_sentencepiece" (SigLIP 2's: Gemma's 256,000).
        parameters_millions: size of the model.
        imagenet_top1: reported zero-shot ImageNet top-1 (%), documentation only.
    """

    name: str
    architecture_name: str
    tag: str
    architecture: dict
    checkpoint: CheckpointFile
    preprocessing: Preprocessing
    tokenizer: str = "clip_bpe"
    parameters_millions: Optional[float] = None
    imagenet_top1: Optional[float] = None

    @property
    def context_length(self):
        return self.architecture["context_length"]


def _clip(embed_dim, image_resolution, vision_layers, vision_width, vision_patch_size, transformer_width,
          transformer_heads, transformer_layers=12, head_width=64, mlp_ratio=4.0, activation="quick_gelu"):  # fmt: skip
    """CLIP arguments from open_clip's model_configs fields (head width and MLP ratio of the image tower)."""
    resnet = isinstance(vision_layers, tuple)
    architecture = dict(
        embed_dim=embed_dim, image_resolution=image_resolution, vision_layers=vision_layers,
        vision_width=vision_width, vision_patch_size=vision_patch_size, context_length=77, vocab_size=49408,
        transformer_width=transformer_width, transformer_heads=transformer_heads,
        transformer_layers=transformer_layers,
    )  # fmt: skip
    # Only what differs from `CLIP`'s defaults (OpenAI's): OpenAI's releases keep OpenAI's ten arguments.
    if activation != "quick_gelu":
        architecture["activation"] = activation
    if head_width != 64:
        architecture["vision_heads"] = (vision_width * 32 if resnet else vision_width) // head_width
    if mlp_ratio != 4.0:
        architecture["vision_mlp_width"] = int(vision_width * mlp_ratio)
    return architecture


# open_clip's architecture names -> sizes (model_configs/*.json); the activation is the checkpoint's.
SIZES = {
    "RN50": dict(embed_dim=1024, image_resolution=224, vision_layers=(3, 4, 6, 3), vision_width=64,
                 vision_patch_size=None, transformer_width=512, transformer_heads=8),
    "RN101": dict(embed_dim=512, image_resolution=224, vision_layers=(3, 4, 23, 3), vision_width=64,
                  vision_patch_size=None, transformer_width=512, transformer_heads=8),
    "RN50x4": dict(embed_dim=640, image_resolution=288, vision_layers=(4, 6, 10, 6), vision_width=80,
                   vision_patch_size=None, transformer_width=640, transformer_heads=10),
    "RN50x16": dict(embed_dim=768, image_resolution=384, vision_layers=(6, 8, 18, 8), vision_width=96,
                    vision_patch_size=None, transformer_width=768, transformer_heads=12),
    "RN50x64": dict(embed_dim=1024, image_resolution=448, vision_layers=(3, 15, 36, 10), vision_width=128,
                    vision_patch_size=None, transformer_width=1024, transformer_heads=16),
    "ViT-B-32": dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=32,
                     transformer_width=512, transformer_heads=8),
    "ViT-B-16": dict(embed_dim=512, image_resolution=224, vision_layers=12, vision_width=768, vision_patch_size=16,
                     transformer_width=512, transformer_heads=8),
    "ViT-L-14": dict(embed_dim=768, image_resolution=224, vision_layers=24, vision_width=1024, vision_patch_size=14,
                     transformer_width=768, transformer_heads=12),
    "ViT-L-14-336": dict(embed_dim=768, image_resolution=336, vision_layers=24, vision_width=1024,
                         vision_patch_size=14, transformer_width=768, transformer_heads=12),
    "ViT-H-14": dict(embed_dim=1024, image_resolution=224, vision_layers=32, vision_width=1280, vision_patch_size=14,
                     transformer_width=1024, transformer_heads=16, transformer_layers=24, head_width=80),
    "ViT-H-14-378": dict(embed_dim=1024, image_resolution=378, vision_layers=32, vision_width=1280,
                         vision_patch_size=14, transformer_width=1024, transformer_heads=16, transformer_layers=24,
                         head_width=80),
    "ViT-g-14": dict(embed_dim=1024, image_resolution=224, vision_layers=40, vision_width=1408, vision_patch_size=14,
                     transformer_width=1024, transformer_heads=16, transformer_layers=24, head_width=88,
                     mlp_ratio=4.3637),
    "ViT-bigG-14": dict(embed_dim=1280, image_resolution=224, vision_layers=48, vision_width=1664,
                        vision_patch_size=14, transformer_width=1280, transformer_heads=20, transformer_layers=32,
                        head_width=104, mlp_ratio=4.9231),
}  # fmt: skip


def _preset(architecture_name, tag, checkpoint, activation, parameters_millions, imagenet_top1, name=None,
            **preprocessing):  # fmt: skip
    architecture = types.MappingProxyType(_clip(**SIZES[architecture_name], activation=activation))
    return Preset(
        name=name or f"{architecture_name}/{tag}",
        architecture_name=architecture_name,
        tag=tag,
        architecture=architecture,
        checkpoint=checkpoint,
        preprocessing=Preprocessing(architecture["image_resolution"], **preprocessing),
        parameters_millions=parameters_millions,
        imagenet_top1=imagenet_top1,
    )


def _openai(name, architecture_name, file_name, sha256, parameters_millions, imagenet_top1):
    # OpenAI's clip/clip.py `_MODELS`: the SHA256 is the URL's second-to-last path part.
    checkpoint = CheckpointFile(file_name, f"{OPENAI_BASE_URL}/{sha256}/{file_name}", sha256)
    return _preset(architecture_name, "openai", checkpoint, "quick_gelu", parameters_millions, imagenet_top1, name)


def _hub(architecture_name, tag, repo, activation, parameters_millions, imagenet_top1, **preprocessing):
    checkpoint = CheckpointFile(HUB_FILES[0], hub_repo=repo)
    return _preset(architecture_name, tag, checkpoint, activation, parameters_millions, imagenet_top1,
                   **preprocessing)  # fmt: skip


# Top-1: OpenAI's paper for OpenAI's releases where it states one, else open_clip's results table.
_PRESETS = (
    _openai("RN50", "RN50", "RN50.pt", "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762",
            102.01, 59.6),
    _openai("RN101", "RN101", "RN101.pt", "8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599",
            119.69, 62.28),
    _openai("RN50x4", "RN50x4", "RN50x4.pt", "7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd",
            178.3, 66.27),
    _openai("RN50x16", "RN50x16", "RN50x16.pt", "52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa",
            290.98, 70.72),
    _openai("RN50x64", "RN50x64", "RN50x64.pt", "be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c",
            623.26, 73.91),
    _openai("ViT-B/32", "ViT-B-32", "ViT-B-32.pt",
            "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af", 151.28, 63.2),
    _openai("ViT-B/16", "ViT-B-16", "ViT-B-16.pt",
            "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f", 149.62, 68.6),
    _openai("ViT-L/14", "ViT-L-14", "ViT-L-14.pt",
            "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836", 427.62, 75.3),
    _openai("ViT-L/14@336px", "ViT-L-14-336", "ViT-L-14-336px.pt",
            "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02", 427.94, 76.2),
    # LAION-400M (ViT-B/32: QuickGELU) and LAION-2B
    _hub("ViT-B-32", "laion400m_e31", "timm/vit_base_patch32_clip_224.laion400m_e31", "quick_gelu", 151.28, 62.94),
    _hub("ViT-B-32", "laion400m_e32", "timm/vit_base_patch32_clip_224.laion400m_e32", "quick_gelu", 151.28, 62.93),
    _hub("ViT-B-32", "laion2b_e16", "timm/vit_base_patch32_clip_224.laion2b_e16", "gelu", 151.28, 65.65),
    _hub("ViT-B-32", "laion2b_s34b_b79k", "laion/CLIP-ViT-B-32-laion2B-s34B-b79K", "gelu", 151.28, 66.56),
    _hub("ViT-B-16", "laion400m_e31", "timm/vit_base_patch16_clip_224.laion400m_e31", "gelu", 149.62, 66.98),
    _hub("ViT-B-16", "laion400m_e32", "timm/vit_base_patch16_clip_224.laion400m_e32", "gelu", 149.62, 67.05),
    _hub("ViT-B-16", "laion2b_s34b_b88k", "laion/CLIP-ViT-B-16-laion2B-s34B-b88K", "gelu", 149.62, 70.23),
    _hub("ViT-L-14", "laion400m_e31", "timm/vit_large_patch14_clip_224.laion400m_e31", "gelu", 427.62, 72.71),
    _hub("ViT-L-14", "laion400m_e32", "timm/vit_large_patch14_clip_224.laion400m_e32", "gelu", 427.62, 72.77),
    _hub("ViT-L-14", "laion2b_s32b_b82k", "laion/CLIP-ViT-L-14-laion2B-s32B-b82K", "gelu", 427.62, 75.25,
         **INCEPTION),
    _hub("ViT-H-14", "laion2b_s32b_b79k", "laion/CLIP-ViT-H-14-laion2B-s32B-b79K", "gelu", 986.11, 77.96),
    _hub("ViT-g-14", "laion2b_s12b_b42k", "laion/CLIP-ViT-g-14-laion2B-s12B-b42K", "gelu", 1366.68, 76.63),
    _hub("ViT-g-14", "laion2b_s34b_b88k", "laion/CLIP-ViT-g-14-laion2B-s34B-b88K", "gelu", 1366.68, 78.47),
    _hub("ViT-bigG-14", "laion2b_s39b_b160k", "laion/CLIP-ViT-bigG-14-laion2B-39B-b160k", "gelu", 2539.57, 80.09),
    # DataComp-XL
    _hub("ViT-B-32", "datacomp_xl_s13b_b90k", "laion/CLIP-ViT-B-32-DataComp.XL-s13B-b90K", "gelu", 151.28, 69.17),
    _hub("ViT-B-16", "datacomp_xl_s13b_b90k", "laion/CLIP-ViT-B-16-DataComp.XL-s13B-b90K", "gelu", 149.62, 73.49),
    _hub("ViT-L-14", "datacomp_xl_s13b_b90k", "laion/CLIP-ViT-L-14-DataComp.XL-s13B-b90K", "gelu", 427.62, 79.21),
    # MetaCLIP (QuickGELU)
    _hub("ViT-B-32", "metaclip_400m", "timm/vit_base_patch32_clip_224.metaclip_400m", "quick_gelu", 151.28, 65.58),
    _hub("ViT-B-32", "metaclip_fullcc", "timm/vit_base_patch32_clip_224.metaclip_2pt5b", "quick_gelu", 151.28,
         67.66),
    _hub("ViT-B-16", "metaclip_400m", "timm/vit_base_patch16_clip_224.metaclip_400m", "quick_gelu", 149.62, 70.80),
    _hub("ViT-B-16", "metaclip_fullcc", "timm/vit_base_patch16_clip_224.metaclip_2pt5b", "quick_gelu", 149.62,
         72.12),
    _hub("ViT-L-14", "metaclip_400m", "timm/vit_large_patch14_clip_224.metaclip_400m", "quick_gelu", 427.62, 76.20),
    _hub("ViT-L-14", "metaclip_fullcc", "timm/vit_large_patch14_clip_224.metaclip_2pt5b", "quick_gelu", 427.62,
         79.17),
    _hub("ViT-H-14", "metaclip_fullcc", "timm/vit_huge_patch14_clip_224.metaclip_2pt5b", "quick_gelu", 986.11,
         80.51),
    _hub("ViT-bigG-14", "metaclip_fullcc", "timm/vit_gigantic_patch14_clip_224.metaclip_2pt5b", "quick_gelu",
         2539.57, None),
    # DFN (QuickGELU; DFN-5B squashes images to the square)
    _hub("ViT-B-16", "dfn2b", "apple/DFN2B-CLIP-ViT-B-16", "quick_gelu", 149.62, 76.24),
    _hub("ViT-L-14", "dfn2b", "apple/DFN2B-CLIP-ViT-L-14", "quick_gelu", 427.62, 81.41),
    _hub("ViT-H-14", "dfn5b", "apple/DFN5B-CLIP-ViT-H-14", "quick_gelu", 986.11, 83.44, resize_mode="squash"),
    _hub("ViT-H-14-378", "dfn5b", "apple/DFN5B-CLIP-ViT-H-14-378", "quick_gelu", 986.71, 84.37,
         resize_mode="squash"),
)  # fmt: skip


# SigLIP towers: (width, layers, heads, MLP width), from open_clip's ViT-*-SigLIP*.json and timm's vit_*_siglip_*.
SIGLIP_TOWERS = {"B": (768, 12, 12, 3072), "L": (1024, 24, 16, 4096), "So400m": (1152, 27, 16, 4304),
                 "gopt": (1536, 40, 16, 6144)}  # fmt: skip
SIGLIP_TEXT_TOWERS = {"B": "B", "L": "L", "So400m": "So400m", "gopt": "So400m"}  # g-opt has So400m's text tower
SIGLIP_PREPROCESSING = dict(INCEPTION, interpolation="bicubic", resize_mode="squash")


def siglip_architecture(size, patch_size, image_resolution, vocab_size=32000, context_length=64):
    """`CLIP` arguments of a SigLIP model: the towers of `size` ("B", "L", "So400m", "gopt")."""
    from keras_clip.models.temperature import SIGLIP_INIT_LOGIT_BIAS, SIGLIP_INIT_LOGIT_SCALE

    width, layers, heads, mlp_width = SIGLIP_TOWERS[size]
    text_width, text_layers, text_heads, text_mlp_width = SIGLIP_TOWERS[SIGLIP_TEXT_TOWERS[size]]
    return types.MappingProxyType(dict(
        embed_dim=width, image_resolution=image_resolution, vision_layers=layers, vision_width=width,
        vision_patch_size=patch_size, context_length=context_length, vocab_size=vocab_size,
        transformer_width=text_width, transformer_heads=text_heads, transformer_layers=text_layers,
        vision_heads=heads, vision_mlp_width=mlp_width, transformer_mlp_width=text_mlp_width,
        activation="gelu_tanh", layer_norm_epsilon=1e-6, text_causal=False, text_pooling="last",
        text_projection_bias=True, image_pooling="map", init_logit_scale=SIGLIP_INIT_LOGIT_SCALE,
        init_logit_bias=SIGLIP_INIT_LOGIT_BIAS,
    ))  # fmt: skip


def _siglip(architecture_name, size, patch_size, image_resolution, repo, context_length=64):
    """A SigLIP (SigLIP 2 when "SigLIP2" is in the name) release: transformers' files on the Hub (Google's)."""
    version_2 = "SigLIP2" in architecture_name
    architecture = siglip_architecture(size, patch_size, image_resolution, 256000 if version_2 else 32000,
                                       context_length)  # fmt: skip
    return Preset(
        name=f"{architecture_name}/webli",
        architecture_name=architecture_name,
        tag="webli",
        architecture=architecture,
        checkpoint=CheckpointFile("model.safetensors", hub_repo=repo),
        preprocessing=Preprocessing(image_resolution, **SIGLIP_PREPROCESSING),
        tokenizer="gemma_sentencepiece" if version_2 else "siglip_sentencepiece",
    )


# SigLIP and SigLIP 2 (fixed resolution; NaFlex is not supported): open_clip's names, Google's repositories.
_SIGLIP_PRESETS = (
    _siglip("ViT-B-16-SigLIP", "B", 16, 224, "google/siglip-base-patch16-224"),
    _siglip("ViT-B-16-SigLIP-256", "B", 16, 256, "google/siglip-base-patch16-256"),
    _siglip("ViT-B-16-SigLIP-384", "B", 16, 384, "google/siglip-base-patch16-384"),
    _siglip("ViT-B-16-SigLIP-512", "B", 16, 512, "google/siglip-base-patch16-512"),
    _siglip("ViT-L-16-SigLIP-256", "L", 16, 256, "google/siglip-large-patch16-256"),
    _siglip("ViT-L-16-SigLIP-384", "L", 16, 384, "google/siglip-large-patch16-384"),
    _siglip("ViT-SO400M-14-SigLIP", "So400m", 14, 224, "google/siglip-so400m-patch14-224", context_length=16),
    _siglip("ViT-SO400M-14-SigLIP-384", "So400m", 14, 384, "google/siglip-so400m-patch14-384"),
    _siglip("ViT-B-16-SigLIP2", "B", 16, 224, "google/siglip2-base-patch16-224"),
    _siglip("ViT-B-16-SigLIP2-256", "B", 16, 256, "google/siglip2-base-patch16-256"),
    _siglip("ViT-B-16-SigLIP2-384", "B", 16, 384, "google/siglip2-base-patch16-384"),
    _siglip("ViT-B-16-SigLIP2-512", "B", 16, 512, "google/siglip2-base-patch16-512"),
    _siglip("ViT-B-32-SigLIP2-256", "B", 32, 256, "google/siglip2-base-patch32-256"),
    _siglip("ViT-L-16-SigLIP2-256", "L", 16, 256, "google/siglip2-large-patch16-256"),
    _siglip("ViT-L-16-SigLIP2-384", "L", 16, 384, "google/siglip2-large-patch16-384"),
    _siglip("ViT-L-16-SigLIP2-512", "L", 16, 512, "google/siglip2-large-patch16-512"),
    _siglip("ViT-SO400M-14-SigLIP2", "So400m", 14, 224, "google/siglip2-so400m-patch14-224"),
    _siglip("ViT-SO400M-14-SigLIP2-378", "So400m", 14, 378, "google/siglip2-so400m-patch14-384"),
    _siglip("ViT-SO400M-16-SigLIP2-256", "So400m", 16, 256, "google/siglip2-so400m-patch16-256"),
    _siglip("ViT-SO400M-16-SigLIP2-384", "So400m", 16, 384, "google/siglip2-so400m-patch16-384"),
    _siglip("ViT-SO400M-16-SigLIP2-512", "So400m", 16, 512, "google/siglip2-so400m-patch16-512"),
    _siglip("ViT-gopt-16-SigLIP2-256", "gopt", 16, 256, "google/siglip2-giant-opt-patch16-256"),
    _siglip("ViT-gopt-16-SigLIP2-384", "gopt", 16, 384, "google/siglip2-giant-opt-patch16-384"),
)
_PRESETS = _PRESETS + _SIGLIP_PRESETS

PRESETS = {preset.name: preset for preset in _PRESETS}


def available_models():
    """The names of OpenAI's released CLIP models, spelled as OpenAI spells them (as `clip.available_models()`)."""
    return [preset.name for preset in _PRESETS if preset.tag == "openai"]


def list_pretrained():
    """Every released checkpoint as open_clip lists it: `[(architecture, tag), ...]`.

    Example:
    >>> ("ViT-B-32", "laion2b_s34b_b79k") in keras_clip.list_pretrained()
    True
    """
    return [(preset.architecture_name, preset.tag) for preset in _PRESETS]


def find_preset(name, pretrained=None):
    """The `Preset` a name denotes, or None.

    Names: OpenAI's ("ViT-B/32"), open_clip's "<architecture>/<tag>" or the architecture with
    `pretrained=<tag>` ("ViT-B-32", "laion2b_s34b_b79k"); a "-quickgelu" suffix on the architecture
    (open_clip's spelling for the same weights with QuickGELU) is accepted.
    """
    if pretrained is not None:
        name = f"{name}/{pretrained}"
    if name in PRESETS:
        return PRESETS[name]
    architecture, _, tag = name.partition("/")
    architecture = architecture.removesuffix("-quickgelu")
    for preset in _PRESETS:
        if (preset.architecture_name, preset.tag) == (architecture, tag):
            return preset
    return None


def get_preset(name, pretrained=None):
    """The `Preset` of a released model's name (see `find_preset`).

    Raises:
        ValueError: not a released model's name; the message lists OpenAI's and points to the rest.
    """
    preset = find_preset(name, pretrained)
    if preset is None:
        raise ValueError(unknown_model_message(name if pretrained is None else f"{name}/{pretrained}"))
    return preset


def unknown_model_message(name):
    return (
        f"Unknown CLIP model {name!r}; OpenAI's: {', '.join(available_models())}; the others are "
        "'<architecture>/<tag>' of keras_clip.list_pretrained(), e.g. 'ViT-B-32/laion2b_s34b_b79k'"
    )


def architecture_by_name(name):
    """`CLIP` arguments of open_clip's architecture name: "ViT-H-14" (GELU) or "ViT-H-14-quickgelu".

    Raises:
        ValueError: an unknown name (the known ones are listed).
    """
    base = name.removesuffix("-quickgelu")
    if base not in SIZES:
        raise ValueError(f"Unknown architecture {name!r}; expected one of {', '.join(SIZES)} (or with -quickgelu)")
    return types.MappingProxyType(_clip(**SIZES[base], activation="quick_gelu" if name != base else "gelu"))


def preset_by_sha256(sha256):
    """The `Preset` whose published file has this SHA256, or None."""
    return next((preset for preset in _PRESETS if sha256 and preset.checkpoint.sha256 == sha256), None)


def model_name(name):
    """The Keras model name of a released model: "ViT-B/32" -> "clip_vit_b_32"."""
    cleaned = "".join(character if character.isalnum() else "_" for character in name.lower())
    return "clip_" + cleaned.strip("_")
