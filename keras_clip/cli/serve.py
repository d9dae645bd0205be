"""Serve a search page (and its JSON API) over an index written by `keras-clip index`.

Examples:
  keras-clip serve photos.index                       # http://127.0.0.1:8000
  keras-clip serve photos.index --host 0.0.0.0 --port 8080
"""

from keras_clip.cli import arguments
from keras_clip.cli.loading import load_clip, model_tokenizer


def add_arguments(parser):
    parser.add_argument("index", help="an index folder written by `keras-clip index`")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine "
                        "only; 0.0.0.0: every network)")  # fmt: skip
    parser.add_argument("--port", type=arguments.positive_int, default=8000, help="port (default 8000)")
    arguments.add_model(parser, default=None, help_extra="the model that made the index")


def run(args):
    from keras_clip.serving.index import load_index
    from keras_clip.serving.search_page import _fastapi, create_app

    _fastapi()  # before loading anything: a missing extra is the first thing said
    try:
        import uvicorn
    except ImportError:
        raise ImportError('keras-clip serve needs uvicorn: pip install "keras-clip[serve]"') from None
    index = load_index(args.index)
    args.model = args.model or index.model
    if args.model is None:
        raise arguments.UsageError(f"{args.index} does not say which model made it: pass --model")
    model = load_clip(args)
    app = create_app(index, model, tokenizer=model_tokenizer(args, model), title=f"Search {args.index}")
    print(f"Serving {index.size} images of {args.index} on http://{args.host}:{args.port} (Ctrl+C stops)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
