"""The building blocks of CLIP's image and text towers, as Keras layers."""

from keras_clip.layers.activations import quick_gelu
from keras_clip.layers.attention import FusedSelfAttention
from keras_clip.layers.attention_pool import AttentionPool2d
from keras_clip.layers.bottleneck import Bottleneck
from keras_clip.layers.modified_resnet import ModifiedResNet
from keras_clip.layers.probe_pooling import ProbePooling
from keras_clip.layers.residual_attention_block import ResidualAttentionBlock
from keras_clip.layers.text_transformer import TextTransformer
from keras_clip.layers.transformer import Transformer
from keras_clip.layers.vision_transformer import VisionTransformer

__all__ = [
    "AttentionPool2d",
    "Bottleneck",
    "FusedSelfAttention",
    "ModifiedResNet",
    "ProbePooling",
    "ResidualAttentionBlock",
    "TextTransformer",
    "Transformer",
    "VisionTransformer",
    "quick_gelu",
]
