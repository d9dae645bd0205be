"""The `keras-clip` command: one module per subcommand under keras_clip/cli/.

Every failure is one line on stderr, "keras-clip <command>: error: <what went wrong>", with exit
status 1 (2 for a wrong option or usage); `--debug` shows the traceback instead. What TensorFlow's and
libjpeg's C++ code prints itself (start-up notes, a line per corrupt JPEG) is hidden unless `--debug`.
"""

import argparse
import contextlib
import importlib
import os
import re
import sys

from keras_clip.cli.arguments import UsageError
from keras_clip.cli.native_stderr import native_stderr_hidden

# Subcommand name -> module in keras_clip.cli defining `add_arguments(parser)` and `run(args)`
# (and a module docstring whose first line is the subcommand's help).
SUBCOMMANDS = ("models", "classify", "evaluate", "embed", "index", "search", "serve", "export", "convert")
MAX_MESSAGE_CHARACTERS = 500


class OneLineParser(argparse.ArgumentParser):
    """argparse with its usage errors on one line: "keras-clip classify: error: ... (see --help)"."""

    def error(self, message):
        self.exit(2, usage_error(self.prog, message))


def usage_error(prog, message):
    return f"{prog}: error: {message} (see {prog} --help)\n"


def build_parser():
    description = ("CLIP for Keras / TensorFlow: zero-shot classification, evaluation, embedding, search indexes "
                   "and a search page, export and conversion.")
    parser = OneLineParser(prog="keras-clip", description=description)
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    subparsers = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"keras_clip.cli.{name}")
        summary = (module.__doc__ or "").strip().splitlines()[0]
        subparser = subparsers.add_parser(
            name, help=summary, description=module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        )
        subparser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        module.add_arguments(subparser)
        subparser.set_defaults(run=module.run, subparser=subparser)
    return parser


def one_line(error):
    """An error's message as one line: TensorFlow's node names and op suffixes dropped, cut if long."""
    message = getattr(error, "message", None) or str(error) or type(error).__name__
    message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", message)
    message = re.sub(r"\s*\[\[\{\{node [^\]]*\]\]", "", message)
    message = re.sub(r"\s*\[Op:\w+\]", "", message)
    first = message.strip().splitlines()[0] if message.strip() else type(error).__name__
    if len(first) > MAX_MESSAGE_CHARACTERS:
        first = first[:MAX_MESSAGE_CHARACTERS] + " ..."
    if isinstance(error, (FileNotFoundError, PermissionError, IsADirectoryError)) and error.filename:
        first = f"{error.strerror}: {error.filename}"
    return first


def main(argv=None):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # reported by the subcommand, whose --help lists what it takes
            args.subparser.error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as exit:  # --help (0) or a usage error (2), already printed
        return exit.code
    try:
        with contextlib.nullcontext() if args.debug else native_stderr_hidden():
            return args.run(args) or 0
    except UsageError as error:
        sys.stderr.write(usage_error(args.subparser.prog, error))
        return 2
    except KeyboardInterrupt:
        print(f"keras-clip {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `keras-clip models | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:  # every failure, ours or a library's: one line, unless --debug
        if args.debug:
            raise
        print(f"keras-clip {args.command}: error: {one_line(error)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
