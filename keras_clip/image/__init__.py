"""Images: decoding, PIL-exact resizing, OpenAI's preprocessing, training augmentation, image files."""
