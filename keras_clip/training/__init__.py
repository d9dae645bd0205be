"""Training CLIP with `model.fit`: the paper's optimizer and validation callbacks.

The contrastive `train_step` itself is the model's (`keras_clip.models.contrastive_steps`), and its
loss is in `keras_clip.losses`.
"""

from keras_clip.training.callbacks import RetrievalRecall, ZeroShotAccuracy
from keras_clip.training.optimizer import optimizer

__all__ = ["RetrievalRecall", "ZeroShotAccuracy", "optimizer"]
