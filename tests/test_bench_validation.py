"""Every grid validates its whole config before any model is built: a malformed value fails in
seconds, naming the key and the valid choices, and writes nothing."""

from __future__ import annotations

import pytest

from adapterdrop.bench import models
from adapterdrop.bench.sweep import run_benchmark
from conftest import bench_cfg

TABLE2 = ("bench.num_tasks=[2]", "bench.processes=1", "bench.dropped_layers=[0,3]")


@pytest.fixture
def no_model(monkeypatch):
    """Building a backbone fails the test: validation must come first."""

    def refuse(*args, **kwargs):
        raise AssertionError("a model was built before the config was validated")

    monkeypatch.setattr(models, "load_backbone", refuse)  # every grid builds through it


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("bench.method.reduction_factor=0", r"bench.method: reduction_factor must be > 0"),
        ("bench.method.name=foo", r"bench.method: unknown method 'foo'; choose one of"),
        ("bench.batch_size=0", r"bench.batch_size must be an int >= 1, got 0"),
        ("bench.batch_size=1.5", r"bench.batch_size must be an int >= 1, got 1.5"),
        ("bench.seq_len=1000", r"seq_len 1000 impossible for tiny: use 1..512"),
        ("bench.num_tasks=2", r"bench.num_tasks must be a list such as \[2, 4, 8, 16\], got 2"),
        ("bench.num_tasks=[2,2]", r"bench.num_tasks must be distinct"),
        ("bench.dropped_layers=[1.5]", r"dropped_layers 1.5 impossible for 4 layers"),
        ("bench.dropped_layers=[2]", r"needs two or more distinct n \(e.g. \[0, 3\], or spread\)"),
        (
            "timing.min_reps=-1",
            r"timing \(bench.timing and timing\).min_reps must be an int >= 1, got -1",
        ),
        ("timing.min_seconds=-1", r"min_seconds must be a number >= 0, got -1"),
        ("timing.max_reps=1", r"max_reps \(1\) must be >= min_reps \(2\)"),
        ("threads=0", r"threads must be an int >= 1, got 0"),
        ("force=maybe", r"force must be true or false, got 'maybe'"),
        ("measure=maybe", r"measure must be true or false, got 'maybe'"),
        ("+bench.foo=1", r"bench=table2 has no key\(s\) \['foo'\]; valid: \['batch_size', "),
        ("+timing.fast=true", r"timing has no key\(s\) \['fast'\]"),
        ("+colour=red", r"the bench config has no key\(s\) \['colour'\]"),
    ],
)
def test_table2_refuses_a_malformed_grid_before_any_model(tmp_path, no_model, override, message):
    cfg = bench_cfg(tmp_path, "table2", *TABLE2, override)
    with pytest.raises(ValueError, match=message):
        run_benchmark(cfg)
    assert not (tmp_path / "raw").exists()


@pytest.mark.parametrize(
    ("grid", "override", "message"),
    [
        ("table1", "timing.min_reps=-1", r"min_reps must be an int >= 1"),
        ("table1", "+bench.colour=red", r"bench=table1 has no key\(s\) \['colour'\]"),
        ("table3", "timing.min_seconds=-1", r"min_seconds must be a number >= 0"),
        ("efficiency", "timing.warmup=-1", r"warmup must be an int >= 0, got -1"),
    ],
)
def test_every_grid_checks_timing_and_keys_first(tmp_path, no_model, grid, override, message):
    with pytest.raises(ValueError, match=message):
        run_benchmark(bench_cfg(tmp_path, grid, override))
    assert not (tmp_path / "raw").exists()


#: Grid settings that make every grid valid on the tiny model (4 layers), so that each case
#: below fails on its own override alone.
TINY_GRID = {
    "table1": ("bench.inference_processes=1",),
    "table3": (),
    "efficiency": ("bench.specialized.dropped_layers=[0,3]",),
    "table2": TABLE2,
}


@pytest.mark.parametrize(
    ("grid", "override", "message"),
    [
        ("table1", "bench.batch_size=8", r"bench.batch_size must be a list such as \[1, 8\]"),
        ("table1", "bench.seq_len=64", r"bench.seq_len must be a list such as \[64, 128\]"),
        ("table1", "bench.batch_size=[1.5]", r"bench.batch_size must be >= 1 in every entry"),
        ("table1", "bench.methods=pfeiffer", r"bench.methods must be a list such as \[pfeiffer\]"),
        ("table1", "bench.reduction_factor=abc", r"reduction_factor must be > 0, got 'abc'"),
        ("table3", "bench.num_adapters=2", r"bench.num_adapters must be a list such as \[2, 8"),
        ("table3", "bench.num_adapters=[1.5]", r"bench.num_adapters must be >= 1 in every entry"),
        ("table3", "bench.batch_size=[8]", r"bench.batch_size must be an int >= 1, got \[8\]"),
        ("table3", "bench.phases=training", r"bench.phases must be a list such as \[training\]"),
        ("efficiency", "bench.batch_size=[8]", r"bench.batch_size must be an int >= 1, got \[8\]"),
        ("efficiency", "bench.studies=robust", r"bench.studies must be a list such as"),
        ("efficiency", "bench.specialized.dropped_layers=3", r"dropped_layers must be a list"),
        ("efficiency", "bench.multitask.num_tasks=2", r"num_tasks must be a list such as \[2, 4"),
        ("efficiency", "bench.coda.seq_lens=128", r"bench.coda.seq_lens must be a list such as"),
        ("efficiency", "bench.coda.token_ratios=3", r"token_ratios must be a list such as"),
        # options only the model's shapes refuse, for every method an efficiency study builds
        ("efficiency", "bench.adapter.reduction_factor=0", r"bench.adapter: reduction_factor"),
        ("efficiency", "bench.coda.method.reduction_factor=0", r"bench.coda.method: reduction"),
        ("efficiency", "bench.overheads.methods.lora.r=0", r"lora: LoRA rank r must be >= 1"),
        ("table2", "bench.min_reps_by_tasks=3", r"min_reps_by_tasks must map task counts to"),
    ],
)
def test_scalars_lists_and_shape_options_are_checked_in_every_grid(
    tmp_path, no_model, grid, override, message
):
    with pytest.raises(ValueError, match=message):
        run_benchmark(bench_cfg(tmp_path, grid, *TINY_GRID[grid], override))
    assert not (tmp_path / "raw").exists()


def test_an_unwritable_results_root_is_refused_before_any_model(tmp_path, no_model):
    # It failed making the results folder's lock, with a bare FileNotFoundError.
    blocker = tmp_path / "a-file"  # a folder cannot be made under a file, even by root
    blocker.write_text("")
    cfg = bench_cfg(tmp_path, "table2", *TABLE2, f"paths.results_root={blocker}/raw")
    with pytest.raises(PermissionError, match=r"cannot be written .* set paths.results_root"):
        run_benchmark(cfg)
    cfg = bench_cfg(tmp_path, "table2", *TABLE2, "measure=false", f"paths.tables_root={blocker}")
    with pytest.raises(PermissionError, match=r"set paths.tables_root"):
        run_benchmark(cfg)
