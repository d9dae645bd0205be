"""open_clip's own files as data: `model_configs/*.json` and `pretrained.py`'s table, read without running it.

open_clip (`pip install --no-deps open_clip_torch`, see the Makefile) imports torchvision, which cannot
load beside the CPU torch wheel here: its files are read as JSON and as Python syntax, never imported.
"""

import ast
import functools
import importlib.util
import json
import os


@functools.lru_cache(maxsize=None)
def open_clip_dir():
    spec = importlib.util.find_spec("open_clip")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("open_clip's files are missing: pip install --no-deps open_clip_torch (see Makefile)")
    return list(spec.submodule_search_locations)[0]


def model_config(name):
    """`model_configs/<name>.json` as a dict."""
    with open(os.path.join(open_clip_dir(), "model_configs", f"{name}.json"), encoding="utf-8") as file:
        return json.load(file)


def _module_constants(path):
    tree = ast.parse(open(path, encoding="utf-8").read())
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return constants


@functools.lru_cache(maxsize=None)
def pretrained_table():
    """{(architecture, tag): {keyword: value}} of `pretrained.py`'s `_PRETRAINED`, each entry's `_pcfg(...)`
    keywords with its defaults (mean, std, interpolation, resize_mode, quick_gelu False)."""
    path = os.path.join(open_clip_dir(), "pretrained.py")
    names = _module_constants(os.path.join(open_clip_dir(), "constants.py"))
    tree = ast.parse(open(path, encoding="utf-8").read())
    defaults = {"_pcfg": dict(mean=names["OPENAI_DATASET_MEAN"], std=names["OPENAI_DATASET_STD"],
                              interpolation="bicubic", resize_mode="shortest"),
                "_slpcfg": dict(mean=names["INCEPTION_MEAN"], std=names["INCEPTION_STD"], interpolation="bicubic",
                                resize_mode="squash")}  # fmt: skip

    def entries_of(call):
        entries = {}
        for keyword in call.keywords:
            entry = keyword.value
            if isinstance(entry, ast.Call) and getattr(entry.func, "id", "") in defaults:
                config = dict(defaults[entry.func.id], quick_gelu=False)
                config.update({item.arg: value(item.value) for item in entry.keywords})
                entries[keyword.arg] = config
        return entries

    def value(node):
        return names[node.id] if isinstance(node, ast.Name) else ast.literal_eval(node)

    groups = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)):
            continue
        target, call = node.targets[0].id, node.value
        if isinstance(call, ast.Call) and getattr(call.func, "id", "") == "dict":
            groups[target] = entries_of(call)
        elif target == "_PRETRAINED":
            table = {}
            for key, group in zip(call.keys, call.values):
                if not isinstance(key, ast.Constant):
                    continue
                if isinstance(group, ast.Name) and group.id in groups:
                    entries = groups[group.id]
                elif isinstance(group, ast.Call) and getattr(group.func, "id", "") == "dict":  # written in place
                    entries = entries_of(group)
                else:
                    continue
                for tag, config in entries.items():
                    table[(key.value, tag)] = config
            return table
    raise RuntimeError(f"{path} has no _PRETRAINED table")
