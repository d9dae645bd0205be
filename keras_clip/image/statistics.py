"""Channel statistics that images are normalised with, as their publishers give them (data, no TensorFlow)."""

# OpenAI's CLIP (clip/clip.py `_transform`), RGB.
OPENAI_IMAGE_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_IMAGE_STD = (0.26862954, 0.26130258, 0.27577711)
