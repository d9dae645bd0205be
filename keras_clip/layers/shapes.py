"""Input checks shared by the towers."""


def check_image_shape(shape, image_resolution, name):
    """Raise a ValueError naming the expected shape when an NHWC image batch does not fit.

    Dimensions that are unknown at trace time (None) are not checked.
    """
    expected = (image_resolution, image_resolution, 3)
    shape = tuple(shape)
    if len(shape) != 4 or any(got is not None and got != want for got, want in zip(shape[1:], expected)):
        raise ValueError(
            f"{name} expects images of shape (batch, {image_resolution}, {image_resolution}, 3) (NHWC); "
            f"got shape {shape}. Resize and crop with keras_clip.ImagePreprocessor({image_resolution})."
        )


def check_token_shape(shape, context_length, allow_shorter=False):
    """Raise a ValueError naming the expected shape when a token batch is not [N, context_length].

    With `allow_shorter`, [N, L] with L < context_length passes too (rows cut after their EOT).
    """
    shape = tuple(shape)
    fits = len(shape) == 2 and (
        shape[1] is None or shape[1] == context_length or (allow_shorter and shape[1] < context_length)
    )
    if not fits:
        raise ValueError(
            f"The text tower expects tokens of shape (batch, {context_length}); got shape {shape}. "
            f"Use keras_clip.tokenize(texts, context_length={context_length})."
        )
