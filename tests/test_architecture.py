"""The layering holds: core <- methods, core <- engine, and a new method is its own code only.

* every module under ``src/adapterdrop`` imports, in a fresh interpreter, whichever module of
  the engine, core, methods or reference is imported first (no hidden import cycle);
* the engine and the core import no method (checked on their source with ``ast``), and no
  method imports the engine or anything above it;
* the bench measures and the reporting layer tabulates: no bench module but the sweep asks
  reporting for tables, and reporting never runs a measurement or a training;
* one concept has one home (one model cache, one forward under autocast, one encoder builder,
  the encoder's storage and the site-key spelling private to their modules), and removed code
  stays removed;
* a method defined here, in the test, plugs in through ``register`` / ``build_method`` and
  ``AdapterEncoder`` alone, trains, and batches its tasks through its own hook;
* a new method written as a module file plus a ``conf/method`` preset, both outside the
  repository, is chosen with ``method=<name>`` and trains through ``python -m
  adapterdrop.cli.train``: adding a method touches those two files only.
"""

from __future__ import annotations

import ast
import functools
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from adapterdrop.core import Encoder, Method, Site, SiteBatch, SiteInputs, SiteKey, SiteModule
from adapterdrop.engine import AdapterEncoder
from adapterdrop.methods import build_method, method_names, register, unregister
from adapterdrop.models import load_backbone
from adapterdrop.params import task_parameter_count
from conftest import REPO, model_cfg

SRC = REPO / "src"
PACKAGE = SRC / "adapterdrop"


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


ALL_MODULES = sorted(module_name(path) for path in PACKAGE.rglob("*.py"))
LOWER = [m for m in ALL_MODULES if m == "adapterdrop.engine" or m.startswith("adapterdrop.core")]
METHODS = [m for m in ALL_MODULES if m.startswith("adapterdrop.methods")]
REFERENCE = [m for m in ALL_MODULES if m.startswith("adapterdrop.reference")]
BENCH = [m for m in ALL_MODULES if m.startswith("adapterdrop.bench")]
REPORTING = [m for m in ALL_MODULES if m.startswith("adapterdrop.reporting")]


# ------------------------------------------------------------------------- imports
#: Each round purges ``adapterdrop`` from ``sys.modules`` and imports every module, the named one
#: first: within the package that is a fresh interpreter's import (third-party libraries stay
#: loaded, so the rounds share one interpreter and take seconds, not minutes).
IMPORT_ROUNDS = """
import importlib, json, sys, traceback
firsts, modules = json.loads(sys.argv[1]), json.loads(sys.argv[2])
failures = {}
for first in firsts:
    for name in [n for n in sys.modules if n == "adapterdrop" or n.startswith("adapterdrop.")]:
        del sys.modules[name]
    for name in [first, *[m for m in modules if m != first]]:
        try:
            importlib.import_module(name)
        except Exception:
            failures[first] = f"importing {name}: " + traceback.format_exc(limit=-3)
            break
print(json.dumps(failures))
"""


def test_every_module_imports_whichever_layer_comes_first():
    firsts = [*LOWER, *METHODS, *REFERENCE, "adapterdrop.params", "adapterdrop.train.module"]
    assert "adapterdrop.methods.registry" in firsts and "adapterdrop.engine" in firsts
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ROUNDS, json.dumps(firsts), json.dumps(ALL_MODULES)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    failures = json.loads(result.stdout.strip().splitlines()[-1])
    assert failures == {}, "\n".join(failures.values())


# ------------------------------------------------------------------------- layering
def imported_names(path: Path) -> set[str]:
    """Every module an ``import`` in ``path`` names (top level, functions, TYPE_CHECKING)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            names.add(node.module or "")
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and str(node.value).startswith("adapterdrop."):
            names.add(node.value)  # importlib.import_module("adapterdrop.x")
    return names


def ours(names: set[str]) -> set[str]:
    return {n for n in names if n == "adapterdrop" or n.startswith("adapterdrop.")}


def source(module: str) -> Path:
    path = SRC / Path(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


@pytest.mark.parametrize("module", LOWER)
def test_engine_and_core_import_only_the_core(module):
    """No method, registry or anything above: the engine dispatches on core types only."""
    imported = ours(imported_names(source(module)))
    assert not {n for n in imported if n.startswith("adapterdrop.methods")}, imported
    assert all(n.startswith("adapterdrop.core") for n in imported), imported
    if module.startswith("adapterdrop.core"):
        assert "adapterdrop.engine" not in imported


#: What a method may import besides the core and other methods: the value checks, a leaf module
#: that imports nothing of ours (a method's options are checked before it builds anything).
METHOD_HELPERS = ("adapterdrop.checks",)


@pytest.mark.parametrize("module", METHODS)
def test_methods_depend_on_the_core_and_other_methods_only(module):
    imported = ours(imported_names(source(module)))
    allowed = ("adapterdrop.core", "adapterdrop.methods", *METHOD_HELPERS)
    above = {n for n in imported if not n.startswith(allowed)}
    assert not above, f"{module} imports {sorted(above)}"
    for helper in METHOD_HELPERS:
        assert not ours(imported_names(source(helper))), f"{helper} must stay a leaf"


#: ARCHITECTURE.md's layers, top first: a module imports only its own layer and those above.
LAYERS = [
    {"results", "checks", "config"},
    {"core"},
    {"engine"},
    {"methods"},
    {"data"},
    {"models", "heads"},
    {"params"},
    {"artefacts"},
    {"reference"},
    {"train"},
    {"bench"},
    {"reporting"},
    {"tracking", "cli"},
]
#: The imports that reach down, each for a reason ARCHITECTURE.md gives: the bench sweep runs a
#: grid end to end (conf/ through cli.conf_dir, then its tables), and the resolvers that conf/
#: calls import what they resolve with when called.
REACHING_DOWN = {
    ("adapterdrop.bench.sweep", "adapterdrop.cli"),
    ("adapterdrop.bench.sweep", "adapterdrop.reporting.benchmarks"),
    ("adapterdrop.config", "adapterdrop.bench.devices"),
    ("adapterdrop.config", "adapterdrop.models"),
}


def rank(module: str) -> int:
    top = module.split(".")[1]
    [index] = [i for i, names in enumerate(LAYERS) if top in names]
    return index


@pytest.mark.parametrize("module", [m for m in ALL_MODULES if m != "adapterdrop"])
def test_each_layer_imports_only_the_layers_above_it(module):
    modules = {n for n in ours(imported_names(source(module))) if n.count(".") >= 1}
    below = {n for n in modules if n in ALL_MODULES and rank(n) > rank(module)}
    assert below <= {n for m, n in REACHING_DOWN if m == module}, f"{module} imports {below}"


#: What runs measurements or trainings: the reporting layer reads their results, never them.
RUNNERS = (
    "adapterdrop.bench.sweep",
    "adapterdrop.bench.runner",
    "adapterdrop.cli",
    "adapterdrop.train",
)


@pytest.mark.parametrize("module", BENCH)
def test_the_bench_reaches_reporting_only_through_its_sweep(module):
    imported = ours(imported_names(source(module)))
    reporting = {n for n in imported if n.startswith("adapterdrop.reporting")}
    if module == "adapterdrop.bench.sweep":
        tables = "adapterdrop.reporting.benchmarks"
        assert all(n == tables or n.startswith(f"{tables}.") for n in reporting), reporting
    else:
        assert not reporting, f"{module} imports {sorted(reporting)}"


@pytest.mark.parametrize("module", REPORTING)
def test_reporting_runs_no_measurement_or_training(module):
    imported = ours(imported_names(source(module)))
    runners = {n for n in imported if n.startswith(RUNNERS)}
    assert not runners, f"{module} imports {sorted(runners)}"


# ------------------------------------------------------------------ one of each
@functools.cache
def sources() -> dict[str, str]:
    return {module: source(module).read_text() for module in ALL_MODULES}


def holders(text: str) -> list[str]:
    """Modules of ``src/adapterdrop`` whose source contains ``text``."""
    return sorted(module for module, code in sources().items() if text in code)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        # one cache of built benchmark models, one forward-under-autocast, one encoder builder
        ("ModelCache()", ["adapterdrop.bench.model_cache"]),
        ("torch.autocast(device.type", ["adapterdrop.bench.devices"]),
        ("with precision(", ["adapterdrop.bench.training_step"]),
        ("def build_encoder(", ["adapterdrop.bench.models"]),
        ("def check_choices(", ["adapterdrop.bench.validate"]),
        # the encoder's storage is its own: others ask modules_of / trainable
        ("task_modules", ["adapterdrop.engine"]),
        # text split on "_": site keys in core.sites alone (Table 1 splits its callables' names,
        # "ours_pfeiffer", into implementation and method)
        ('split("_"', ["adapterdrop.bench.experiments.table1", "adapterdrop.core.sites"]),
    ],
)
def test_one_concept_has_one_home(text, where):
    assert holders(text) == where


@pytest.mark.parametrize(
    "name",
    ["site_position", "adapterhub_fusion_forward", "new_encoder", "apply_preset", "workloads"],
)
def test_removed_code_stays_removed(name):
    assert holders(name) == []
    assert not list(PACKAGE.rglob(f"{name}.py"))


#: Packages whose ``__init__`` is an API for code outside this repository's src (so a name may be
#: used by tests and users only): the task catalogue and readers (``DataError`` is what callers
#: catch, ``TaskDataModule`` what conf/data instantiates) and the method author's registry.
PUBLIC_APIS = {"adapterdrop.data", "adapterdrop.methods"}


def imports_from(code: str, package: str) -> set[str]:
    """Names ``code`` imports from ``package`` itself (``from package import name``)."""
    return {
        alias.name
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.ImportFrom) and node.module == package
        for alias in node.names
    }


def used_outside_tests(package: str, name: str) -> bool:
    """Whether src or scripts import ``name`` from ``package``, or a notebook, config or src
    spells it ``package.name``."""
    code = [*sources().values(), *(p.read_text() for p in (REPO / "scripts").glob("*.py"))]
    text = [*code, *(p.read_text() for p in (REPO / "notebooks").glob("*.ipynb"))]
    text += [p.read_text() for p in (REPO / "conf").rglob("*.yaml")]
    return any(name in imports_from(c, package) for c in code) or any(
        f"{package}.{name}" in t for t in text
    )


def re_exports(package: str) -> list[str]:
    """What ``package``'s ``__init__`` offers in ``__all__`` from its own modules."""
    tree = ast.parse(source(package).read_text())
    offered = {
        ast.literal_eval(element)
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(getattr(t, "id", "") == "__all__" for t in node.targets)
        for element in node.value.elts
    }
    return [
        alias.asname or alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(f"{package}.")
        for alias in node.names
        if (alias.asname or alias.name) in offered
    ]


@pytest.mark.parametrize(
    "package",
    [m for m in ALL_MODULES if source(m).name == "__init__.py" and m not in PUBLIC_APIS],
)
def test_a_package_re_exports_only_what_its_users_import(package):
    """No ``__init__`` re-export that only tests use (``adapterdrop.bench`` re-exported 20 names
    nobody imported; ``adapterdrop.train`` four)."""
    assert [n for n in re_exports(package) if not used_outside_tests(package, n)] == []


#: Generic code that once asked a method's name (``name == "lora"``, ``in ("full", ...)``).
GENERIC = [
    "adapterdrop.params",
    "adapterdrop.artefacts",
    "adapterdrop.heads",
    "adapterdrop.engine",
    "adapterdrop.train.module",
    "adapterdrop.cli.train",
    "adapterdrop.bench.experiments.efficiency_overheads",
]


def compared_strings(code: str) -> set[str]:
    """String constants that ``code`` compares something with (``==``, ``!=``, ``in``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Compare):
            for side in [node.left, *node.comparators]:
                items = side.elts if isinstance(side, ast.Tuple | ast.List | ast.Set) else [side]
                found |= {i.value for i in items if isinstance(i, ast.Constant)}
    return {value for value in found if isinstance(value, str)}


@pytest.mark.parametrize("module", GENERIC)
def test_generic_code_asks_a_methods_flags_not_its_name(module):
    code = sources()[module]
    assert compared_strings(code) & set(method_names()) == set()
    # nor reads a method's own parameter names (params.py once parsed peft's "lora_A.<task>")
    strings = {n.value for n in ast.walk(ast.parse(code)) if isinstance(n, ast.Constant)}
    assert not [text for text in strings if isinstance(text, str) and "lora" in text]


def test_site_keys_are_typed_outside_the_core():
    """``"3_output"`` is ``str(SiteKey)``'s business: no other module spells a site as text."""
    spelled = [f'_{site.name.lower()}"' for site in Site] + [f"}}_{s.name.lower()}" for s in Site]
    spelling = [m for m in ALL_MODULES if any(text in sources()[m] for text in spelled)]
    assert spelling == ["adapterdrop.core.sites"]


# ------------------------------------------------------------- a method of the test's own
SCALE = "test-site-scale"


class SiteScale(SiteModule):
    """``delta = x * scale + shift``: a learned per-site affine map of the sub-layer output.

    Zero-initialised, so a fresh module leaves the frozen model unchanged. Modules of equal width
    batch: one broadcast multiply-add for all tasks at a site.
    """

    batched_calls: list[int] = []  # sizes of the batched calls, read by the tests

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(hidden_size))
        self.shift = nn.Parameter(torch.zeros(hidden_size))

    def delta(self, inputs: SiteInputs) -> torch.Tensor:
        return inputs.projected * self.scale + self.shift

    def batch_signature(self) -> tuple:
        return ("site-scale", self.scale.shape[0])

    @classmethod
    def batched_delta(
        cls, modules: Sequence[SiteScale], batch: SiteBatch, streams: Sequence[int]
    ) -> torch.Tensor:
        cls.batched_calls.append(len(modules))
        projected = batch.per_stream(lambda inputs: inputs.projected, streams)
        if projected.dim() == 3:  # every module reads one stream: broadcast it
            projected = projected.unsqueeze(0)
        scale = torch.stack([m.scale for m in modules])[:, None, None, :]
        shift = torch.stack([m.shift for m in modules])[:, None, None, :]
        return projected * scale + shift


@dataclass
class SiteScaleMethod(Method):
    """A ``SiteScale`` at the given sites of every layer ``>= leave_out``."""

    sites: tuple[str, ...] = ("attention", "output")
    leave_out: int = 0

    def apply(self, encoder: Encoder, task: str) -> None:
        encoder.check_dropped(self.leave_out)
        encoder.add_task(task, self)
        for layer in range(self.leave_out, encoder.num_layers):
            for site in self.sites:
                module = SiteScale(encoder.hidden_size)
                encoder.add_module_at(task, layer, Site[site.upper()], module)


@pytest.fixture
def scale_method() -> Iterator[str]:
    """``SiteScaleMethod`` registered for one test, and gone from the registry afterwards."""
    register(SCALE)(SiteScaleMethod)
    SiteScale.batched_calls.clear()
    try:
        yield SCALE
    finally:
        unregister(SCALE)
    assert SCALE not in method_names()


def tiny_encoder() -> AdapterEncoder:
    encoder = AdapterEncoder(load_backbone({**model_cfg("tiny"), "tokenizer": None}).model)
    encoder.freeze_backbone()
    return encoder.eval()


def padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (3, 9), generator=generator)
    mask = (torch.arange(9) < torch.tensor([[9], [5], [2]])).long()
    return ids * mask, mask


def randomize(encoder: AdapterEncoder, task: str, seed: int) -> None:
    torch.manual_seed(seed)
    with torch.no_grad():
        for param in encoder.trainable(task):
            nn.init.normal_(param, std=0.3)


def test_a_method_defined_outside_the_package_builds_and_starts_as_the_frozen_model(
    scale_method,
):
    assert scale_method in method_names()
    with pytest.raises(ValueError, match=r"no option\(s\) \['rank'\]; valid: \['leave_out', "):
        build_method({"name": scale_method, "rank": 2})
    encoder = tiny_encoder()
    build_method({"name": scale_method, "leave_out": 1}).apply(encoder, "t")
    keys = list(encoder.modules_of("t"))
    assert keys[:2] == [SiteKey(1, Site.ATTENTION), SiteKey(1, Site.OUTPUT)]
    assert len(keys) == 2 * (encoder.num_layers - 1)
    assert isinstance(encoder.method_of("t"), SiteScaleMethod)
    assert task_parameter_count(encoder, "t") == len(keys) * 2 * encoder.hidden_size
    ids, mask = padded_batch()
    plain = encoder.backbone(ids, attention_mask=mask).last_hidden_state
    assert torch.equal(encoder(ids, mask, tasks="t")["t"], plain)


def test_its_batched_hook_serves_a_multi_task_pass_equal_to_tasks_one_by_one(scale_method):
    encoder = tiny_encoder()
    for seed, task in enumerate("abc"):
        build_method({"name": scale_method}).apply(encoder, task)
        randomize(encoder, task, seed)
    build_method({"name": "pfeiffer", "init": "bert"}).apply(encoder, "p")  # batches apart
    randomize(encoder, "p", 3)
    ids, mask = padded_batch()
    plain = encoder.backbone(ids, attention_mask=mask).last_hidden_state
    dropped = {"a": 0, "b": 2, "c": 0, "p": 3}
    with torch.no_grad():
        alone = {t: encoder(ids, mask, tasks=t, dropped_layers=n)[t] for t, n in dropped.items()}
        assert SiteScale.batched_calls == []  # one task at a time: each module's own delta
        together = encoder(ids, mask, tasks=list(dropped), dropped_layers=dropped)
    # Layer 0: a and c branch off the shared stream together (both read it), then run as two
    # streams of three; from layer 2's output b runs batched with them (three of four streams).
    # Where the Pfeiffer task also acts (layer 3's output) the site mixes types: one by one.
    assert {2, 3} <= set(SiteScale.batched_calls) <= {2, 3}
    for task in dropped:
        torch.testing.assert_close(together[task], alone[task], msg=task)
        assert (together[task] - plain).abs().max() > 1e-2, f"{task} is an identity: vacuous"


def test_it_trains_through_the_encoders_trainable_parameters(scale_method):
    encoder = tiny_encoder().train()
    for task in ("a", "b"):
        build_method({"name": scale_method, "sites": ["output"]}).apply(encoder, task)
    params = encoder.trainable("a")
    assert len(params) == 2 * encoder.num_layers
    assert all(p.requires_grad for p in params)
    assert not {id(p) for p in params} & {id(p) for p in encoder.trainable("b")}
    optimizer = torch.optim.SGD(params, lr=0.1)
    ids, mask = padded_batch()
    target = torch.randn(3, 9, encoder.hidden_size, generator=torch.Generator().manual_seed(1))
    losses = []
    for _ in range(3):
        out = encoder(ids, mask, tasks=["a", "b"], dropped_layers={"a": 0, "b": 2})
        loss = (out["a"] - target).pow(2).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert all(p.grad is None for p in encoder.backbone.parameters())
    assert all(p.abs().sum() > 0 for p in params)  # every site's module learned
    assert all(p.abs().sum() == 0 for p in encoder.trainable("b"))  # b got no gradient


# ------------------------------------------- a method added as its module and its preset
#: A whole new method, as a user adds one: this module file and the preset below. It lives in a
#: folder of the test's, outside the package, so its preset names it in ``_module_``; inside the
#: package (``src/adapterdrop/methods/site_scale.py``) the registry finds it without that line.
EXAMPLE_MODULE = '''\
"""Site scale: a learned per-channel term ``x * scale + shift`` after each layer's FFN."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from adapterdrop.core import Encoder, Method, Site, SiteInputs, SiteModule
from adapterdrop.methods.registry import register


class SiteScale(SiteModule):
    """Zero-initialised: a fresh module leaves the frozen model unchanged."""

    def __init__(self, hidden_size: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(hidden_size))
        self.shift = nn.Parameter(torch.zeros(hidden_size))

    def delta(self, inputs: SiteInputs) -> torch.Tensor:
        return inputs.projected * self.scale + self.shift


@register("example-site-scale")
@dataclass
class SiteScaleMethod(Method):
    """A ``SiteScale`` at the FFN output of every layer ``>= leave_out``."""

    leave_out: int = 0

    def apply(self, encoder: Encoder, task: str) -> None:
        encoder.check_dropped(self.leave_out)
        encoder.add_task(task, self)
        for layer in range(self.leave_out, encoder.num_layers):
            encoder.add_module_at(task, layer, Site.OUTPUT, SiteScale(encoder.hidden_size))
'''
EXAMPLE_PRESET = """\
# Site scale (an example method): x * scale + shift after each layer's FFN output.
name: example-site-scale
_module_: example_site_scale
leave_out: 0
"""
SHARED_DATA = REPO.parent / "shared" / "data"


def tree(*roots: Path) -> set[Path]:
    return {path for root in roots for path in root.rglob("*") if "__pycache__" not in path.parts}


@pytest.mark.skipif(
    not (SHARED_DATA / "glue" / "RTE" / "dev.tsv").is_file(), reason="no real GLUE RTE files"
)
def test_a_new_method_is_its_module_and_its_preset_and_trains_through_the_cli(tmp_path):
    """The method above, written as a real module and a ``conf/method`` preset in a folder of
    the test's, is chosen with ``method=<name>`` through the real training config and trains a
    step (specialized drop at n = 1 included) through ``python -m adapterdrop.cli.train``;
    nothing in the repository changes."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "example_site_scale.py").write_text(EXAMPLE_MODULE)
    (tmp_path / "conf" / "method").mkdir(parents=True)
    (tmp_path / "conf" / "method" / "example-site-scale.yaml").write_text(EXAMPLE_PRESET)
    before = tree(PACKAGE, REPO / "conf")
    command = [
        sys.executable,
        "-m",
        "adapterdrop.cli.train",
        f"hydra.searchpath=[file://{tmp_path / 'conf'}]",
        "method=example-site-scale",
        "drop.mode=specialized",
        "drop.n=1",
        "model=tiny",
        "data=glue/rte",
        "logger=none",
        f"data.data_dir={SHARED_DATA}",
        f"data.cache_dir={tmp_path / 'cache'}",
        "data.limit_examples=16",
        "data.batch_size=8",
        "trainer.max_steps=1",
        "trainer.precision=32-true",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        f"paths.results_root={tmp_path / 'results'}",
        f"paths.checkpoints_root={tmp_path / 'checkpoints'}",
        f"paths.adapters_root={tmp_path / 'adapters'}",
        f"hydra.run.dir={tmp_path / 'run'}",
    ]
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "pkg"), "WANDB_MODE": "disabled"}
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    [path] = (tmp_path / "results" / "train").glob("*.json")
    record = json.loads(path.read_text())
    assert record["status"] == "ok" and record["kind"] == "train"
    assert record["config"]["method"] == yaml.safe_load(EXAMPLE_PRESET)
    hidden, layers = 64, 4  # conf/model/tiny.yaml
    assert record["metrics"]["params/trainable"] == (layers - 1) * 2 * hidden  # n = 1 left out
    assert record["metrics"]["train/loss"] > 0
    assert tree(PACKAGE, REPO / "conf") == before


def test_a_method_module_that_does_not_import_is_named():
    with pytest.raises(ValueError, match=r"_module_: cannot import 'no_such_method_module'"):
        build_method({"name": "x", "_module_": "no_such_method_module"})
    with pytest.raises(ValueError, match=r"_module_ must name a Python module, got 3"):
        build_method({"name": "x", "_module_": 3})
