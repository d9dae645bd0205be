"""Training CLIP with `model.fit`: the paper's optimizer, contrastive steps and validation callbacks."""

from keras_clip.training.callbacks import RetrievalRecall, ZeroShotAccuracy
from keras_clip.training.optimizer import optimizer

__all__ = ["RetrievalRecall", "ZeroShotAccuracy", "optimizer"]
