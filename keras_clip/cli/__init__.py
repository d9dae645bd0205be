"""The `keras-clip` command: one module per subcommand under keras_clip/cli/."""

import argparse
import importlib
import sys

# Subcommand name -> module in keras_clip.cli defining `add_arguments(parser)` and `run(args)`
# (and a module docstring whose first line is the subcommand's help).
SUBCOMMANDS = {
    "models": "models",
    "embed": "embed",
    "search": "search",
    "classify": "classify",
    "evaluate": "evaluate",
    "export": "export",
}


def build_parser():
    parser = argparse.ArgumentParser(prog="keras-clip", description="OpenAI's CLIP for Keras / TensorFlow.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(f"keras_clip.cli.{module_name}")
        summary = (module.__doc__ or "").strip().splitlines()[0]
        subparser = subparsers.add_parser(
            name, help=summary, description=module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        module.add_arguments(subparser)
        subparser.set_defaults(run=module.run)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
