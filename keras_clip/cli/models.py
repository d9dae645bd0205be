"""List the released models `--model` accepts: OpenAI's names, then open_clip's "<architecture>/<tag>".

Examples:
  keras-clip models
  keras-clip models --details      (source, resolution, size and reported zero-shot ImageNet top-1)
"""

from keras_clip.models.presets import PRESETS


def add_arguments(parser):
    parser.add_argument("--details", action="store_true", help="print a table: source, resolution, size, top-1")


def _source(preset):
    return preset.checkpoint.hub_repo or preset.checkpoint.url.split("/")[2]


def run(args):
    if not args.details:
        print("\n".join(PRESETS))
        return 0
    rows = [("name", "source", "resolution", "parameters (M)", "ImageNet top-1 (%)")]
    for name, preset in PRESETS.items():
        top1 = "" if preset.imagenet_top1 is None else f"{preset.imagenet_top1:.1f}"
        size = "" if preset.parameters_millions is None else f"{preset.parameters_millions:.0f}"
        rows.append((name, _source(preset), str(preset.preprocessing.image_resolution), size, top1))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    return 0
