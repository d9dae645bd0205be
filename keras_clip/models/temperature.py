"""Initial and largest values of the learnable logit scale (log inverse temperature) and bias.

Plain numbers, free of TensorFlow, so that configs can be read without building a model.
"""

import math

OPENAI_INIT_LOGIT_SCALE = math.log(1 / 0.07)
MAX_LOGIT_SCALE = math.log(100.0)
# SigLIP's initial values for training from scratch (Zhai et al. 2023): t = 10, b = -10.
SIGLIP_INIT_LOGIT_SCALE = math.log(10.0)
SIGLIP_INIT_LOGIT_BIAS = -10.0
