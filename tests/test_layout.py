"""The package's layout: the core imports inward only, and `import keras_clip` stays light."""

import ast
import os
import subprocess
import sys

import pytest

PACKAGE_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "keras_clip")
OUTER_LAYERS = (
    "keras_clip.data",
    "keras_clip.evaluation",
    "keras_clip.serving",
    "keras_clip.cli",
    "keras_clip.training.callbacks",
)


def module_file(name):
    """The file of a keras_clip module (its __init__.py for a package), or None if there is none."""
    path = os.path.join(os.path.dirname(PACKAGE_ROOT), *name.split("."))
    for candidate in (path + ".py", os.path.join(path, "__init__.py")):
        if os.path.isfile(candidate):
            return candidate
    return None


def imported_modules(name):
    """keras_clip modules named by every import statement of a module, at any depth of its code."""
    path = module_file(name)
    package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names if module_file(f"{base}.{alias.name}"))
    return {module for module in found if module.startswith("keras_clip.") and module_file(module)}


def with_parent_packages(module):
    """The module and every package Python runs the __init__.py of to import it (keras_clip's own aside)."""
    parts = module.split(".")
    return {".".join(parts[:end]) for end in range(2, len(parts) + 1)}


def reachable_from(start_modules):
    """Every keras_clip module that importing `start_modules` can import, following all import statements."""
    seen, pending = set(), list(start_modules)
    while pending:
        module = pending.pop()
        for reached in with_parent_packages(module):
            if reached not in seen:
                seen.add(reached)
                pending.extend(imported_modules(reached))
    return seen


def package_modules(folder):
    modules = []
    for root, _, files in os.walk(os.path.join(PACKAGE_ROOT, folder)):
        for file in files:
            if file.endswith(".py"):
                relative = os.path.relpath(os.path.join(root, file), os.path.dirname(PACKAGE_ROOT))[: -len(".py")]
                modules.append(relative.replace(os.sep, ".").removesuffix(".__init__"))
    return modules


def outer(modules):
    return sorted(module for module in modules if module.startswith(OUTER_LAYERS))


def test_models_reach_no_outer_layer():
    reached = reachable_from(package_modules("models"))
    assert "keras_clip.layers.vision_transformer" in reached and "keras_clip.losses.contrastive" in reached
    assert outer(reached) == []


def test_the_walk_sees_outer_layers_where_they_are_imported():
    # The check above can fail: the training callbacks do import data and evaluation.
    reached = reachable_from(["keras_clip.training.callbacks"])
    assert {"keras_clip.data.sources", "keras_clip.evaluation.image_stream"} <= set(reached)


@pytest.mark.parametrize("layer", ["text", "image", "layers", "losses", "utils"])
def test_inner_layers_know_no_model(layer):
    reached = reachable_from(package_modules(layer))
    assert [module for module in reached if module.startswith(("keras_clip.models.clip", "keras_clip.checkpoints"))
            ] == []  # fmt: skip
    assert outer(reached) == []


def _imports_in_fresh_process(code):
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_command_line_help_and_models_do_not_import_tensorflow():
    output = _imports_in_fresh_process(
        "import sys, contextlib, io\n"
        "from keras_clip.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as listing:\n"
        "    assert main(['models']) == 0\n"
        "    assert main(['--help']) == 0\n"
        "    assert main(['classify', '--help']) == 0\n"
        "print(listing.getvalue().split()[:2], 'tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    assert output.strip() == "['RN50', 'RN101'] False False"
