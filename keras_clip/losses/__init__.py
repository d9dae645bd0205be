"""Contrastive losses of image and text embeddings (CLIP's softmax, SigLIP's sigmoid), with negatives
gathered across replicas.

They live beside the models rather than under `training/`: `CLIP.train_step` computes them, and so
does anything that scores a batch (evaluation, benchmarks), without the training callbacks.
"""

from keras_clip.losses.contrastive import contrastive_loss
from keras_clip.losses.replicas import gather_from_replicas, num_replicas_in_sync
from keras_clip.losses.sigmoid import sigmoid_loss

__all__ = ["contrastive_loss", "gather_from_replicas", "num_replicas_in_sync", "sigmoid_loss"]
