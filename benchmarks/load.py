"""Loading a full-size checkpoint: keras_clip (cold and cached) against its publisher's PyTorch code.

`--model ViT-B/32` (default) writes a random-weight ViT-B/32 archive laid out like OpenAI's release
(float16 matrices, storages located on cuda:0) with PyTorch and OpenAI's code; the reference is
`torch.jit.load(path, map_location="cpu")` + OpenAI's `build_model(state_dict).float()`, what
`clip.load(name, device="cpu", jit=False)` does after its download.
`--model ViT-H-14` writes a random-weight ViT-H/14 (LAION-2B's sizes) as a transformers folder
(`model.safetensors` + `config.json`, float32, 3.9 GB); the reference is transformers'
`CLIPModel.from_pretrained(folder)`, with every weight then read once (transformers 5 maps the file and
reads weights lazily: 0.2 s and 0.4 GB before any weight is used).
Each is timed in a fresh process:
- keras_clip cold: `keras_clip.checkpoints.load.load_model(path)` with an empty cache (read, convert, cache);
- keras_clip warm: the same call again (from the cached converted weights);
- keras_clip warm bfloat16: the same with `dtype="bfloat16"` (weights cast from the cache);
- the reference.
Load time excludes importing the libraries; peak RSS is the process's maximum resident set
(`VmHWM`, imports included), also shown above the RSS right after the imports.

Usage: python benchmarks/load.py [--model ViT-B/32|ViT-H-14] [--repeats 3] [--workdir DIR]
Targets: cold no slower than the reference, warm under 3 s (ViT-B/32), peak RSS above the imports under 2x
(ViT-B/32) / 1.5x (ViT-H-14) the float32 model.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

MEASURE = textwrap.dedent(
    """
    import json, os, sys, time
    import psutil
    {imports}
    baseline = psutil.Process().memory_info().rss
    start, start_cpu = time.perf_counter(), time.process_time()
    {load}
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    # VmHWM: this process's peak resident set (ru_maxrss would include the parent's, inherited through fork).
    peak = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print("RESULT " + json.dumps(dict(seconds=seconds, cpu_seconds=cpu_seconds, peak=peak, baseline=baseline,
                                      parameters=parameters)))
    """
)

KERAS_CLIP = dict(
    imports="import numpy as np\nimport tensorflow as tf\nfrom keras_clip.checkpoints.load import load_model",
    # A warm load maps the cache file (its pages are read when first used): every weight is summed, as for
    # transformers below, so that both end with all weights in memory.
    load="model = load_model({path!r}, cache_dir={cache!r}, verbose=False, dtype={dtype!r})\n"
    # (Counted from the shapes: `Variable.numpy()` copies memory TensorFlow does not own, as a mapped cache's.)
    "parameters = sum(int(np.prod(w.shape)) for w in model.weights)\n"
    "touched = sum(float(tf.reduce_sum(w.value)) for w in model.weights)",
)
PYTORCH = dict(
    imports="import torch\nsys.path.insert(0, {root!r})\n"
    "from tests.helpers.openai_reference import reference_module\nbuild_model = reference_module('model').build_model",
    load="jit_model = torch.jit.load({path!r}, map_location='cpu').eval()\n"
    "model = build_model(jit_model.state_dict()).float().eval()\n"
    "parameters = sum(p.numel() for p in model.parameters())",
)
TRANSFORMERS = dict(
    imports="import torch\nfrom transformers import CLIPModel",
    # transformers 5 maps safetensors files and reads a weight when it is first used: every weight is
    # summed here so that both libraries end with all weights in memory, ready to compute.
    load="model = CLIPModel.from_pretrained({path!r}).eval()\nparameters = sum(p.numel() for p in model.parameters())\n"
    "touched = sum(float(p.detach().sum()) for p in model.parameters())",
)
MODELS = {"ViT-B/32": ("ViT-B-32.pt", PYTORCH, "pytorch"), "ViT-H-14": ("ViT-H-14", TRANSFORMERS, "transformers")}


def write_checkpoint(model, path):
    sys.path.insert(0, ROOT)
    from keras_clip.models.presets import get_preset
    from tests.helpers import checkpoint_files

    if model == "ViT-B/32":
        config = dict(get_preset("ViT-B/32").architecture)
        _, state_dict = checkpoint_files.reference_state_dict(config, seed=0)
        checkpoint_files.write_torchscript(path, config, state_dict, location="cuda:0")
        return
    import torch
    from transformers import CLIPConfig, CLIPModel

    from tests.helpers.transformers_reference import transformers_config

    config = transformers_config(dict(get_preset("ViT-H-14/laion2b_s32b_b79k").architecture))
    for tower in ("text_config", "vision_config"):
        config[tower]["hidden_act"] = "gelu"
    torch.manual_seed(0)
    CLIPModel(CLIPConfig(**config)).save_pretrained(path)


def measure(kind, path, cache, dtype=None, reference=PYTORCH):
    spec = KERAS_CLIP if kind == "keras_clip" else reference
    script = MEASURE.format(
        imports=spec["imports"].format(root=ROOT),
        load=spec["load"].format(path=path, cache=cache, dtype=dtype),
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"{kind} failed:\n{result.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="fresh-process runs of each measurement")
    parser.add_argument("--workdir", help="folder for the checkpoint and caches (default: a temporary one)")
    parser.add_argument("--model", default="ViT-B/32", choices=sorted(MODELS), help="the checkpoint (default ViT-B/32)")
    args = parser.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="keras_clip_load_benchmark_")
    os.makedirs(workdir, exist_ok=True)
    file_name, reference, reference_name = MODELS[args.model]
    path = os.path.join(workdir, file_name)
    if not os.path.exists(path):
        write_checkpoint(args.model, path)
    size = sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(path) for name in names) \
        if os.path.isdir(path) else os.path.getsize(path)  # fmt: skip
    print(f"checkpoint {path}: {size / 1e6:.0f} MB; load average {os.getloadavg()[0]:.2f}")
    runs = {"keras_clip cold": [], "keras_clip warm": [], "warm bfloat16": [], reference_name: []}
    for repeat in range(args.repeats):
        cache = os.path.join(workdir, f"cache_{repeat}")
        if os.path.exists(cache):
            shutil.rmtree(cache)
        runs["keras_clip cold"].append(measure("keras_clip", path, cache))
        runs["keras_clip warm"].append(measure("keras_clip", path, cache))
        runs["warm bfloat16"].append(measure("keras_clip", path, cache, dtype="bfloat16"))
        runs[reference_name].append(measure("reference", path, cache, reference=reference))
    float32_mb = runs[reference_name][0]["parameters"] * 4 / 1e6
    assert runs["keras_clip warm"][0]["parameters"] == runs[reference_name][0]["parameters"]
    print(f"parameters {runs[reference_name][0]['parameters']:,}; float32 size {float32_mb:.0f} MB")
    print(f"{'':16} {'wall s median (min)':>20} {'CPU s median':>13} {'peak RSS MB':>12} {'above imports MB':>17}")
    medians, cpu_medians = {}, {}
    for name, results in runs.items():
        seconds = sorted(result["seconds"] for result in results)
        cpu = sorted(result["cpu_seconds"] for result in results)
        medians[name], cpu_medians[name] = seconds[len(seconds) // 2], cpu[len(cpu) // 2]
        peak = max(result["peak"] for result in results) / 1e6
        above = max(result["peak"] - result["baseline"] for result in results) / 1e6
        print(f"{name:16} {medians[name]:>12.2f} ({seconds[0]:5.2f}) {cpu_medians[name]:>13.2f} {peak:>12.0f} "
              f"{above:>17.0f}")
    for name in ("keras_clip cold", "keras_clip warm", "warm bfloat16"):
        print(f"{name} / {reference_name}: wall {medians[name] / medians[reference_name]:.2f}x, "
              f"CPU {cpu_medians[name] / cpu_medians[reference_name]:.2f}x")
    print(f"load average at the end {os.getloadavg()[0]:.2f} (other processes on the machine inflate wall times)")


if __name__ == "__main__":
    main()
