"""Tools for the offline GPU machine: the wheel bundle's pins, the install recipe's TORCH_INDEX,
and the smoke script (its checks cover every grid and method, compose, and run here on CPU).
Everything offline: nothing here downloads."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from conftest import CONF, REPO

BUNDLE_SCRIPT = REPO / "scripts" / "gpu_bundle.sh"
SMOKE_SCRIPT = REPO / "scripts" / "smoke_gpu.py"
#: What the GPU machine lacks at the versions we need (the reason for the bundle).
MUST_SHIP = {
    "transformers",
    "tokenizers",
    "huggingface-hub",
    "safetensors",
    "adapters",
    "hydra-core",
    "omegaconf",
    "antlr4-python3-runtime",
    "adapterdrop",
}
#: Markers of the GPU machine: CPython 3.12 on x86_64 Linux.
GPU_MARKERS = {
    "python_version": "3.12",
    "python_full_version": "3.12.0",
    "platform_machine": "x86_64",
    "sys_platform": "linux",
    "platform_system": "Linux",
    "os_name": "posix",
    "implementation_name": "cpython",
    "platform_python_implementation": "CPython",
    "extra": "",
}


def load_smoke():
    spec = importlib.util.spec_from_file_location("smoke_gpu", SMOKE_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["smoke_gpu"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


smoke = load_smoke()


def bundle_list() -> list[tuple[str, str, str]]:
    out = subprocess.run(
        ["bash", str(BUNDLE_SCRIPT), "--list"], capture_output=True, text=True, check=True
    ).stdout
    return [tuple(line.split()) for line in out.splitlines() if line.strip()]


def pins() -> dict[str, str]:
    """Canonical name -> pinned version of every downloaded wheel."""
    result = {}
    for _, requirement, _ in bundle_list():
        if "==" in requirement:
            name, version = requirement.split("==")
            result[canonicalize_name(name)] = version
    return result


# ----------------------------------------------------------------------------- the bundle
def test_bundle_list_is_exact_pins_in_two_tiers_and_never_torch():
    rows = bundle_list()
    assert all(len(row) == 3 for row in rows), rows
    assert {tier for tier, _, _ in rows} == {"required", "fallback"}
    names = [canonicalize_name(req.split("==")[0]) for _, req, _ in rows]
    assert len(names) == len(set(names)), "a package is listed twice"
    required = {
        canonicalize_name(req.split("==")[0]) for tier, req, _ in rows if tier == "required"
    }
    assert required >= {canonicalize_name(n) for n in MUST_SHIP}
    for _, requirement, module in rows:
        name = requirement.split("==")[0]
        assert name == "adapterdrop" or requirement.count("==") == 1, requirement
        assert module.isidentifier(), module
        assert not canonicalize_name(name).startswith(("torch", "nvidia", "triton")), name


def test_bundle_pins_satisfy_our_dependencies_and_each_other():
    pinned = pins()
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for dependency in map(Requirement, project["dependencies"]):
        version = pinned.get(canonicalize_name(dependency.name))
        if version is not None:
            assert dependency.specifier.contains(version), f"{dependency} vs pin {version}"
    assert pinned["transformers"].startswith("4.57.")
    assert pinned["adapters"].startswith("1.3.")
    assert pinned["hydra-core"].startswith("1.3.")
    assert pinned["omegaconf"].startswith("2.3.")
    # Each pin's own requirements on other pins, where this machine has the pinned version.
    for name, version in pinned.items():
        try:
            if importlib.metadata.version(name) != version:
                continue
        except importlib.metadata.PackageNotFoundError:
            continue
        for requirement in map(Requirement, importlib.metadata.requires(name) or []):
            if requirement.marker and not requirement.marker.evaluate(GPU_MARKERS):
                continue
            other = pinned.get(canonicalize_name(requirement.name))
            if other is not None:
                assert requirement.specifier.contains(other), f"{name}: {requirement} vs {other}"


def test_bundle_script_needs_the_venv_and_leaves_the_folder_alone(tmp_path):
    target = tmp_path / "bundle"
    target.mkdir()
    (target / "keep").write_text("x")
    env = {**os.environ, "PY": str(tmp_path / "missing-python"), "GPU_BUNDLE_DIR": str(target)}
    done = subprocess.run(["bash", str(BUNDLE_SCRIPT)], capture_output=True, text=True, env=env)
    assert done.returncode == 1 and "make install" in done.stderr
    assert (target / "keep").is_file()


def test_gpu_bundle_and_venv_are_ignored_by_git():
    ignored = subprocess.run(
        ["git", "check-ignore", "gpu-bundle/x.whl", ".venv-gpu/bin/python"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert ignored.stdout.split() == ["gpu-bundle/x.whl", ".venv-gpu/bin/python"]


# ----------------------------------------------------------------------------- the Makefile
def test_makefile_lists_the_gpu_targets():
    text = (REPO / "Makefile").read_text()
    phony = text.split(".PHONY:")[1].split("\n\n")[0]
    assert "gpu-bundle" in phony and "smoke-gpu" in phony
    assert "\nTORCH_INDEX ?=" in text
    listed = subprocess.run(["make", "-s", "help"], cwd=REPO, capture_output=True, text=True)
    assert "gpu-bundle" in listed.stdout and "smoke-gpu" in listed.stdout


def fake_install(tmp_path: Path, gpu: bool, *make_args: str) -> tuple[str, list[str]]:
    """Run the install recipe with a stub python (logs its arguments) and a stub nvidia-smi."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    stub = f'#!/bin/bash\necho "$*" >> {log}\n'
    stub += 'if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin"; cp "$0" "$3/bin/python"; fi\n'
    (bin_dir / "python").write_text(stub)
    gpu_line = "echo 'GPU 0: NVIDIA H200 (UUID: GPU-0)'" if gpu else "exit 9"
    (bin_dir / "nvidia-smi").write_text(f"#!/bin/bash\n{gpu_line}\n")
    for path in bin_dir.iterdir():
        path.chmod(0o755)
    done = subprocess.run(
        ["make", "-s", "install", f"VENV={tmp_path / 'venv'}", f"PYTHON={bin_dir / 'python'}"]
        + list(make_args),
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"},
    )
    assert done.returncode == 0, done.stderr
    return done.stderr, log.read_text().splitlines()


def test_install_warns_about_the_cpu_wheel_on_a_gpu_machine(tmp_path):
    stderr, calls = fake_install(tmp_path, gpu=True)
    assert "TORCH_INDEX" in stderr and "download.pytorch.org/whl/cu124" in stderr
    assert "-m pip install --quiet torch==2.13.0" in calls  # unchanged without TORCH_INDEX


def test_install_is_unchanged_without_a_gpu(tmp_path):
    stderr, calls = fake_install(tmp_path, gpu=False)
    assert "warning" not in stderr
    assert "-m pip install --quiet torch==2.13.0" in calls


def test_torch_index_reaches_the_torch_install_only(tmp_path):
    url = "https://download.pytorch.org/whl/cu124"
    stderr, calls = fake_install(tmp_path, True, f"TORCH_INDEX={url}", "TORCH_SPEC=torch==2.6.0")
    assert "warning" not in stderr
    assert f"-m pip install --quiet --index-url {url} torch==2.6.0" in calls
    assert sum("--index-url" in call for call in calls) == 1


# ----------------------------------------------------------------------------- the smoke script
def test_smoke_checks_cover_every_grid_and_every_trainable_method():
    grids = {path.stem for path in (CONF / "bench").glob("*.yaml")}
    assert set(smoke.BENCH_GRIDS) == grids
    methods = {path.stem for path in (CONF / "method").glob("*.yaml")} - {"fusion"}
    trained = {arg.split("=")[1] for run in smoke.TRAIN_RUNS.values() for arg in run[:1]}
    assert trained == methods
    listed = subprocess.run(
        [sys.executable, str(SMOKE_SCRIPT), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert listed == list(smoke.CHECKS) and listed[0] == "imports"


@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_smoke_overrides_pick_the_dtype_of_the_device(device):
    bench = smoke.device_overrides("bench", device)
    train = smoke.device_overrides("train", device)
    if device == "cuda":
        assert bench == ["device=cuda", "dtype=fp16"] and train == ["trainer=gpu"]
    else:
        assert "dtype=fp32" in bench and "device=cpu" in bench
        assert "trainer.precision=32-true" in train


def test_results_go_under_the_given_root_whichever_paths_keys_exist(tmp_path):
    new = tmp_path / "new.yaml"
    new.write_text("seed: 0\npaths:\n  root: results\n  results_root: null\nhydra:\n  x: 1\n")
    old = tmp_path / "old.yaml"
    old.write_text("paths:\n  results_root: results/raw\n  tables_root: results/tables\n")
    train = tmp_path / "train.yaml"
    train.write_text("paths:\n  results_root: results/raw\n  output_dir: x\nroot: 1\n")
    root = tmp_path / "out"
    assert smoke.results_overrides(new, root) == [f"paths.root={root}"]
    assert smoke.results_overrides(old, root) == [
        f"paths.results_root={root}/raw",
        f"paths.tables_root={root}/tables",
    ]
    assert smoke.results_overrides(train, root) == [f"paths.results_root={root}/raw"]


def compose_check(ctx, name: str):
    """The check's command line composed by Hydra (hydra.* overrides left to the CLI)."""
    from hydra import compose, initialize_config_dir

    if name in smoke.BENCH_GRIDS:
        primary, command = "bench", smoke.bench_command(ctx, name)
    else:
        primary, command = "train", smoke.train_command(ctx, name)
    assert command[:3] == [ctx.python, "-m", f"adapterdrop.cli.{primary}"]
    overrides = [arg for arg in command[3:] if not arg.startswith("hydra.")]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(config_name=primary, overrides=overrides)


@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_every_check_composes_and_writes_nothing_into_results(tmp_path, device):
    from omegaconf import OmegaConf

    ctx = smoke.Context(sys.executable, tmp_path, device, 0.0, 1.0, tokenizer="/tok")
    for name in [*smoke.BENCH_GRIDS, *smoke.TRAIN_RUNS]:
        cfg = OmegaConf.to_container(compose_check(ctx, name), resolve=False)
        assert cfg["model"]["name"] == "tiny", name
        paths = {k: str(v) for k, v in cfg["paths"].items() if v is not None and "{" not in str(v)}
        for key in ("root", "results_root", "tables_root"):
            if key in paths:
                assert paths[key].startswith(str(tmp_path)), (name, key, paths[key])
        if name in smoke.TRAIN_RUNS:
            assert cfg["model"]["tokenizer"] == "/tok"
            assert cfg["trainer"]["max_steps"] == 3 and not cfg["logger"]
            expected = "${adapterdrop.precision:gpu}" if device == "cuda" else "32-true"
            assert cfg["trainer"]["precision"] == expected
        else:
            assert cfg["dtype"] == ("fp16" if device == "cuda" else "fp32")
            assert cfg["preset"] == "cpu"  # the paper preset would resize the tiny grid


def test_bench_grids_stay_tiny(tmp_path):
    from omegaconf import OmegaConf

    from adapterdrop.bench.experiments import get_experiment

    ctx = smoke.Context(sys.executable, tmp_path, "cpu", 0.0, 1.0)
    for name in smoke.BENCH_GRIDS:
        cfg = OmegaConf.to_container(compose_check(ctx, name), resolve=True)
        points = get_experiment(name).points(cfg)
        assert 1 <= len(points) <= 12, (name, len(points))


def test_fixture_data_reads_as_rte(tmp_path):
    from adapterdrop.data import get_task_spec, read_split

    root = smoke.write_fixture_data(tmp_path)
    spec = get_task_spec("glue/rte")
    assert len(read_split(spec, root, "train")) == 48
    assert len(read_split(spec, root, "validation")) == 16


def test_last_error_line_finds_the_exception():
    log = "Traceback (most recent call last):\n  File x\nValueError: bad grid\n\nINFO done\n"
    assert smoke.last_error_line(log) == "ValueError: bad grid"
    assert smoke.last_error_line("one\ntwo\n") == "two"
    assert smoke.last_error_line("") == "(no output)"
    assert smoke.last_error_line("x\ntorch.OutOfMemoryError: CUDA out of memory\n").startswith(
        "torch.OutOfMemoryError"
    )


def make_wheel(folder: Path, name: str, module: str) -> str:
    """A minimal pure-python wheel, written by hand (no build tools, no network)."""
    dist = f"{name}-0.1.dist-info"
    filename = f"{name}-0.1-py3-none-any.whl"
    files = {
        f"{module}.py": "VALUE = 1\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{dist}/RECORD"] = "".join(f"{path},,\n" for path in [*files, f"{dist}/RECORD"])
    with zipfile.ZipFile(folder / filename, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return filename


def test_gpu_venv_installs_required_wheels_and_only_missing_fallbacks(tmp_path):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    rows = [
        ("required", "smokereq==0.1", "smokereq", make_wheel(bundle, "smokereq", "smokereq")),
        ("fallback", "smokefall==0.1", "smokefall", make_wheel(bundle, "smokefall", "smokefall")),
        ("fallback", "smokejson==0.1", "json", make_wheel(bundle, "smokejson", "smokejson")),
    ]
    manifest = "tier\trequirement\timport\twheel\n" + "".join("\t".join(r) + "\n" for r in rows)
    (bundle / "MANIFEST.tsv").write_text(manifest)
    venv = tmp_path / "venv"
    ok, detail = smoke.build_gpu_venv(bundle, venv, sys.executable, tmp_path / "logs")
    assert ok, detail
    assert "fallback smokefall==0.1" in detail and "smokejson" not in detail  # json: stdlib
    freeze = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import smokereq, smokefall; print('ok')"],
        capture_output=True,
        text=True,
    )
    assert freeze.stdout.strip() == "ok", freeze.stderr
    again = smoke.build_gpu_venv(bundle, venv, sys.executable, tmp_path / "logs")
    assert again == (True, f"{venv.name} up to date with {bundle.name}/")


def run_smoke(tmp_path: Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES"}
    if path:
        env["PATH"] = f"{path}:{env['PATH']}"
    return subprocess.run(
        [sys.executable, str(SMOKE_SCRIPT), "--bundle", "0", "--out", str(tmp_path), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=600,
    )


def repo_files(*folders: str) -> set[Path]:
    return {path for folder in folders for path in (REPO / folder).rglob("*") if path.is_file()}


def test_smoke_runs_a_tiny_grid_on_cpu_and_writes_only_into_its_folder(tmp_path):
    before = repo_files("results", "outputs")
    done = run_smoke(tmp_path, "--only", "imports,table2")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[:2] for line in lines if line.startswith(("PASS", "FAIL"))] == [
        ["PASS", "imports"],
        ["PASS", "table2"],
    ]
    assert "2 passed, 0 failed" in done.stdout
    assert list((tmp_path / "results").rglob("table2/*.json"))
    assert repo_files("results", "outputs") == before


def test_smoke_fails_a_gpu_machine_whose_torch_has_no_cuda_and_keeps_going(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this torch has CUDA")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "nvidia-smi"
    fake.write_text("#!/bin/bash\necho 'GPU 0: NVIDIA H200 (UUID: GPU-0)'\n")
    fake.chmod(0o755)
    done = run_smoke(tmp_path / "out", "--only", "table2", "--budget", "0", path=str(bin_dir))
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert any(line.startswith("FAIL cuda: nvidia-smi lists 1 GPU(s)") for line in lines)
    assert "FAIL table2: not run: the time budget is spent" in lines
    assert "0 passed, 2 failed" in done.stdout


def test_smoke_refuses_unknown_checks(tmp_path):
    done = run_smoke(tmp_path, "--only", "table9")
    assert done.returncode == 2 and "table9" in done.stdout


@pytest.mark.slow
def test_the_whole_smoke_passes_on_cpu(tmp_path):
    done = run_smoke(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    passed = [line for line in done.stdout.splitlines() if line.startswith("PASS ")]
    assert len(passed) == len(smoke.CHECKS)
