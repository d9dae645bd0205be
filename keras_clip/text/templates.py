"""Prompt templates for zero-shot classification, as published by OpenAI.

Each template is a format string whose `{}` receives a class name. Source: OpenAI's notebook
"Prompt Engineering for ImageNet" (github.com/openai/CLIP, notebooks/), also in open_clip's
`zero_shot_metadata.py`.

- `IMAGENET_TEMPLATES`: the 80 templates ensembled for the paper's ImageNet results.
- `SIMPLE_TEMPLATES`: the 7 templates that sequential forward selection over the 80 picked, in
  the order it picked them; OpenAI reports they do a bit better than the 80, above all for the
  smaller models.
"""

IMAGENET_TEMPLATES = [
    "a bad photo of a {}.",
    "a photo of many {}.",
    "a sculpture of a {}.",
    "a photo of the hard to see {}.",
    "a low resolution photo of the {}.",
    "a rendering of a {}.",
    "graffiti of a {}.",
    "a bad photo of the {}.",
    "a cropped photo of the {}.",
    "a tattoo of a {}.",
    "the embroidered {}.",
    "a photo of a hard to see {}.",
    "a bright photo of a {}.",
    "a photo of a clean {}.",
    "a photo of a dirty {}.",
    "a dark photo of the {}.",
    "a drawing of a {}.",
    "a photo of my {}.",
    "the plastic {}.",
    "a photo of the cool {}.",
    "a close-up photo of a {}.",
    "a black and white photo of the {}.",
    "a painting of the {}.",
    "a painting of a {}.",
    "a pixelated photo of the {}.",
    "a sculpture of the {}.",
    "a bright photo of the {}.",
    "a cropped photo of a {}.",
    "a plastic {}.",
    "a photo of the dirty {}.",
    "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.",
    "a photo of the {}.",
    "a good photo of the {}.",
    "a rendering of the {}.",
    "a {} in a video game.",
    "a photo of one {}.",
    "a doodle of a {}.",
    "a close-up photo of the {}.",
    "a photo of a {}.",
    "the origami {}.",
    "the {} in a video game.",
    "a sketch of a {}.",
    "a doodle of the {}.",
    "a origami {}.",
    "a low resolution photo of a {}.",
    "the toy {}.",
    "a rendition of the {}.",
    "a photo of the clean {}.",
    "a photo of a large {}.",
    "a rendition of a {}.",
    "a photo of a nice {}.",
    "a photo of a weird {}.",
    "a blurry photo of a {}.",
    "a cartoon {}.",
    "art of a {}.",
    "a sketch of the {}.",
    "a embroidered {}.",
    "a pixelated photo of a {}.",
    "itap of the {}.",
    "a jpeg corrupted photo of the {}.",
    "a good photo of a {}.",
    "a plushie {}.",
    "a photo of the nice {}.",
    "a photo of the small {}.",
    "a photo of the weird {}.",
    "the cartoon {}.",
    "art of the {}.",
    "a drawing of the {}.",
    "a photo of the large {}.",
    "a black and white photo of a {}.",
    "the plushie {}.",
    "a dark photo of a {}.",
    "itap of a {}.",
    "graffiti of the {}.",
    "a toy {}.",
    "itap of my {}.",
    "a photo of a cool {}.",
    "a photo of a small {}.",
    "a tattoo of the {}.",
]

SIMPLE_TEMPLATES = [
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
]

#: Names accepted wherever templates are expected (`ZeroShotClassifier`, the CLI).
NAMED_TEMPLATES = {"imagenet": IMAGENET_TEMPLATES, "simple": SIMPLE_TEMPLATES}


def resolve_templates(templates):
    """A list of format strings from a list, a single template, or a name ("imagenet", "simple").

    Every template must contain exactly one `{}` (where the class name goes).

    Raises:
        ValueError: an empty list, an unknown name, or a template without exactly one `{}`.

    Example:
    >>> resolve_templates("a photo of a {}.")
    ['a photo of a {}.']
    """
    if isinstance(templates, str):
        if templates in NAMED_TEMPLATES:
            return list(NAMED_TEMPLATES[templates])
        templates = [templates]
    templates = list(templates)
    if not templates:
        raise ValueError("At least one template is needed")
    for template in templates:
        if not isinstance(template, str):
            raise TypeError(f"Templates must be strings, got {template!r}")
        if template.count("{}") != 1 or template.replace("{}", "").count("{") or template.replace("{}", "").count("}"):
            names = ", ".join(repr(name) for name in NAMED_TEMPLATES)
            raise ValueError(
                f"Template {template!r} must contain exactly one '{{}}' where the class name goes "
                f"(or be one of the names {names})"
            )
    return templates
