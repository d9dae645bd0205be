"""Loading a full-size ViT-B/32 TorchScript checkpoint: keras_clip (cold and cached) against PyTorch.

Writes a random-weight ViT-B/32 archive laid out like OpenAI's release (float16 matrices,
storages located on cuda:0) with PyTorch and OpenAI's code, then times, each in a fresh process:
- keras_clip cold: `keras_clip.checkpoints.load.load_model(path)` with an empty cache (read, convert, cache);
- keras_clip warm: the same call again (from the cached converted weights);
- keras_clip warm bfloat16: the same with `dtype="bfloat16"` (weights cast from the float16/float32 cache);
- PyTorch: `torch.jit.load(path, map_location="cpu")` + OpenAI's `build_model(state_dict).float()`,
  what `clip.load(name, device="cpu", jit=False)` does after its download.
Load time excludes importing the libraries; peak RSS is the process's maximum resident set
(`VmHWM`, imports included), also shown above the RSS right after the imports.

Usage: python benchmarks/load.py [--repeats 3] [--workdir DIR]
Targets: cold no slower than PyTorch, warm under 3 s, peak RSS under 2x the float32 model (2 x 605 MB).
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
    imports="from keras_clip.checkpoints.load import load_model",
    load="model = load_model({path!r}, cache_dir={cache!r}, verbose=False, dtype={dtype!r})\n"
    "parameters = sum(int(w.numpy().size) for w in model.weights)",
)
PYTORCH = dict(
    imports="import torch\nsys.path.insert(0, {root!r})\n"
    "from tests.helpers.openai_reference import reference_module\nbuild_model = reference_module('model').build_model",
    load="jit_model = torch.jit.load({path!r}, map_location='cpu').eval()\n"
    "model = build_model(jit_model.state_dict()).float().eval()\n"
    "parameters = sum(p.numel() for p in model.parameters())",
)


def write_checkpoint(path):
    sys.path.insert(0, ROOT)
    from keras_clip.models.presets import get_preset
    from tests.helpers import checkpoint_files

    config = dict(get_preset("ViT-B/32").architecture)
    _, state_dict = checkpoint_files.reference_state_dict(config, seed=0)
    checkpoint_files.write_torchscript(path, config, state_dict, location="cuda:0")


def measure(kind, path, cache, dtype=None):
    spec = KERAS_CLIP if kind == "keras_clip" else PYTORCH
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
    args = parser.parse_args()
    workdir = args.workdir or tempfile.mkdtemp(prefix="keras_clip_load_benchmark_")
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, "ViT-B-32.pt")
    if not os.path.exists(path):
        write_checkpoint(path)
    print(f"checkpoint {path}: {os.path.getsize(path) / 1e6:.0f} MB; load average {os.getloadavg()[0]:.2f}")
    runs = {"keras_clip cold": [], "keras_clip warm": [], "warm bfloat16": [], "pytorch": []}
    for repeat in range(args.repeats):
        cache = os.path.join(workdir, f"cache_{repeat}")
        if os.path.exists(cache):
            shutil.rmtree(cache)
        runs["keras_clip cold"].append(measure("keras_clip", path, cache))
        runs["keras_clip warm"].append(measure("keras_clip", path, cache))
        runs["warm bfloat16"].append(measure("keras_clip", path, cache, dtype="bfloat16"))
        runs["pytorch"].append(measure("pytorch", path, cache))
    float32_mb = runs["pytorch"][0]["parameters"] * 4 / 1e6
    assert runs["keras_clip warm"][0]["parameters"] == runs["pytorch"][0]["parameters"]
    print(f"parameters {runs['pytorch'][0]['parameters']:,}; float32 size {float32_mb:.0f} MB; "
          f"RSS target < {2 * float32_mb:.0f} MB")
    print(f"{'':16} {'wall s median (min)':>20} {'CPU s median':>13} {'peak RSS MB':>12} {'above imports MB':>17}")
    medians, cpu_medians = {}, {}
    for name, results in runs.items():
        seconds = sorted(result["seconds"] for result in results)
        cpu = sorted(result["cpu_seconds"] for result in results)
        medians[name], cpu_medians[name] = seconds[len(seconds) // 2], cpu[len(cpu) // 2]
        peak = max(result["peak"] for result in results) / 1e6
        above = max(result["peak"] - result["baseline"] for result in results) / 1e6
        print(f"{name:16} {medians[name]:>12.2f} ({seconds[0]:5.2f}) {cpu_medians[name]:>13.2f} {peak:>12.0f} {above:>17.0f}")
    for name in ("keras_clip cold", "keras_clip warm", "warm bfloat16"):
        print(f"{name} / pytorch: wall {medians[name] / medians['pytorch']:.2f}x, "
              f"CPU {cpu_medians[name] / cpu_medians['pytorch']:.2f}x")
    print(f"load average at the end {os.getloadavg()[0]:.2f} (other processes on the machine inflate wall times)")


if __name__ == "__main__":
    main()
