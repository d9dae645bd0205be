"""Training CLIP with `model.fit`: the paper's optimizer and contrastive steps."""

from keras_clip.training.optimizer import optimizer
