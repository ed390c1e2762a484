"""Every key in conf/ is read by the code, and each setting has one home.

Two checks over every option of every config group, composed as train.py composes them:

- a node with ``_target_`` may hold only constructor parameters of its target (found with
  ``inspect.signature``; a target that takes ``**kwargs`` passes its keys on, so only its
  named parameters are checked when it has none);
- a plain node (data, features, extract, paths, the top level ...) may hold only keys whose
  name some gifemo module, entry point or script reads (``.key``, ``"key"`` or ``key=``).
"""
from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import get_method
from omegaconf import OmegaConf

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
GROUPS = ["data", "features", "backbone", "extract", "model", "trainer", "logger", "callbacks",
          "experiment", "hparams_search", "debug"]
# keys Hydra itself reads (not gifemo)
HYDRA_OWNED = {"defaults", "hydra", "_target_", "_partial_", "_convert_", "_recursive_"}


def _code_text() -> str:
    files = [*sorted((REPO / "gifemo").rglob("*.py")), REPO / "train.py",
             *sorted((REPO / "scripts").glob("*.py"))]
    return "\n".join(p.read_text(encoding="utf-8") for p in files)


CODE = _code_text()


def _read_by_code(key: str) -> bool:
    k = re.escape(key)
    return re.search(rf"\.{k}\b|[\"']{k}[\"']|\b{k}\s*=", CODE) is not None


@pytest.fixture(scope="module")
def composed():
    """Every case composed once, in one Hydra context, as plain containers (unresolved)."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return {name: OmegaConf.to_container(compose("train", overrides=ov,
                                                     return_hydra_config=True), resolve=False)
                for name, ov in _cases()}


def _cases():
    out = [("base", [])]
    for group in GROUPS:
        for p in sorted((CONF / group).glob("*.yaml")):
            out.append((f"{group}={p.stem}", [f"{group}={p.stem}"]))
    return out


# plain nodes handed whole to a function or config class: their keys are its parameters
CONSUMERS = {
    "cfg.data.split": "gifemo.data.splits.make_split",
    "cfg.data.decode": "gifemo.features.visual_features.DecodeConfig",
    "cfg.extract": "gifemo.features.visual_features.RunConfig",
}


def _interpolated(raw) -> set[str]:
    """Key paths referenced by ${...} anywhere in the config (they are read through it)."""
    refs = set()

    def walk(v):
        if isinstance(v, dict):
            for x in v.values():
                walk(x)
        elif isinstance(v, list):
            for x in v:
                walk(x)
        elif isinstance(v, str):
            refs.update(m for m in re.findall(r"\$\{([\w.]+)\}", v))
    walk(raw)
    return {f"cfg.{r}" for r in refs}


def _all_refs() -> set[str]:
    """Key paths that some option of some group references (e.g. paths.data_dir by data/demo)."""
    refs = set()
    for p in CONF.rglob("*.yaml"):
        refs |= {f"cfg.{r}" for r in re.findall(r"\$\{([\w.]+)\}", p.read_text(encoding="utf-8"))}
    return refs


ALL_REFS = _all_refs()


def _params(target: str) -> tuple[set[str], bool]:
    params = inspect.signature(get_method(target)).parameters
    return set(params), any(p.kind is p.VAR_KEYWORD for p in params.values())


def _problems(node, where: str, refs: frozenset = frozenset()) -> list[str]:
    problems = []
    if isinstance(node, list):
        for i, v in enumerate(node):
            problems += _problems(v, f"{where}[{i}]", refs)
        return problems
    if not isinstance(node, dict):
        return problems
    keys = [k for k in node if k not in HYDRA_OWNED]
    is_collection = keys and all(isinstance(node[k], dict) and "_target_" in node[k] for k in keys)
    target = node.get("_target_") or CONSUMERS.get(where)
    if target:
        params, takes_kwargs = _params(target)
        problems += [f"{where}.{k}: not a parameter of {target}" for k in keys
                     if k not in params and not takes_kwargs]
    elif not is_collection:
        problems += [f"{where}.{k}: no code reads a key of this name" for k in keys
                     if f"{where}.{k}" not in refs and not _read_by_code(str(k))]
    for k in keys:
        problems += _problems(node[k], f"{where}.{k}", refs)
    return problems


@pytest.mark.parametrize("name", [c[0] for c in _cases()])
def test_every_key_is_read(composed, name):
    raw = dict(composed[name])
    refs = frozenset(_interpolated(raw) | ALL_REFS)  # e.g. the hydra node reads task_name
    raw.pop("hydra", None)
    assert _problems(raw, "cfg", refs) == []


def test_the_check_catches_an_unused_key():
    node = {"extract": {"clip_batch_size": 8, "clip_batchsize": 4},
            "callbacks": {"pr": {"_target_": "gifemo.eval.callbacks.PRMetricsCallback",
                                 "n_pos": 3000, "npos": 1}},
            "data": {"manifest": "x", "unread_setting_xyz": 1}}
    problems = _problems(node, "cfg")
    assert problems == [
        "cfg.extract.clip_batchsize: not a parameter of gifemo.features.visual_features.RunConfig",
        "cfg.callbacks.pr.npos: not a parameter of gifemo.eval.callbacks.PRMetricsCallback",
        "cfg.data.unread_setting_xyz: no code reads a key of this name"]


def test_each_setting_has_one_home():
    """No key path is set to a literal in two config files (interpolations are references)."""
    homes: dict[str, list[str]] = {}
    skip = {"defaults", "_target_", "_partial_", "tags", "task_name", "name", "hydra"}
    for p in sorted(CONF.rglob("*.yaml")):
        raw = OmegaConf.load(p)
        group = p.parent.relative_to(CONF).as_posix()
        for key, value in _leaves(OmegaConf.to_container(raw, resolve=False)):
            if key.split(".")[0] in skip or key.split(".")[-1] in skip:
                continue
            if isinstance(value, str) and value.startswith("${"):
                continue  # a reference to the setting's home, not a second home
            homes.setdefault(f"{group}:{key}", []).append(p.name)
    # within a group, options may differ in value (that is what options are); the check is
    # that a setting does not live in two groups at once, e.g. clip_batch_size
    by_leaf: dict[str, set[str]] = {}
    for gk in homes:
        group, key = gk.split(":", 1)
        if group in (".", "experiment", "hparams_search", "debug"):
            continue  # overlays set other groups' keys on purpose
        by_leaf.setdefault(key.split(".")[-1], set()).add(group)
    shared = {k: sorted(g) for k, g in by_leaf.items() if len(g) > 1 and k not in ALLOWED_SHARED}
    assert shared == {}


# the same word naming different settings in different groups
ALLOWED_SHARED = {"seed", "accelerator", "devices", "pin_memory", "max_iter", "tol", "batch_size",
                  "weights", "mode", "dir", "rho", "k", "group"}


def _leaves(obj, prefix=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, f"{prefix}{k}.")
    else:
        yield prefix[:-1], obj
