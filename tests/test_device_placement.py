"""No forward or training step of ours waits on the device or builds tensors on the host.

The suite runs without a GPU, so this checks the property on CPU with the ``meta`` device: the
tiny model is built on CPU, moved to ``meta`` and fed ``meta`` inputs, so every tensor a
forward makes should be ``meta`` too. A ``TorchFunctionMode`` sees every torch call of the
pass (ours and HF's) and records

* any call whose result is a CPU tensor (a factory without ``device=``, or anything computed
  from one): on a GPU that tensor would be built on the host and copied over; and any
  ``torch.tensor`` / ``as_tensor`` of Python data, even with ``device=`` (the same copy);
* any host read of a tensor's value (``.item()``, ``bool()``, ``int()``, ``.tolist()``,
  ``.cpu()``, ``.numpy()``) and ops whose output shape depends on the data (``nonzero``,
  ``masked_select``, one-argument ``where``, ``repeat_interleave`` with tensor repeats and no
  ``output_size``): each makes the host wait for the device;
* indexing with a Python list, a boolean tensor or a CPU tensor: torch turns a list into a
  host tensor and copies it, and a boolean index needs its count on the host.

``meta`` tensors have no data, so a value read also fails outright there; the mode records it
first, so the message says where it came from. Backward runs in autograd's C++ engine, outside
the mode; the training step checks the forward of a training step (graph recorded, dropout on,
fusion's fold recomputed in the graph) under the mode, then runs its backward on ``meta``.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from adapterdrop.engine import AdapterEncoder
from adapterdrop.methods import build_method
from adapterdrop.methods.fusion import fusion_regularization_loss, record_fusion_activations
from adapterdrop.models import load_backbone
from conftest import model_cfg

SOURCE_ROOT = Path(__file__).resolve().parents[1] / "src"
HOST_READS = {"item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__"}
INDEXING = {"__getitem__", "__setitem__", "index_put", "index_put_"}
HOST_DATA = {"tensor", "as_tensor", "asarray"}  # Python data: built on the host, then copied
DATA_DEPENDENT = {"nonzero", "argwhere", "masked_select", "unique", "unique_consecutive"}
BATCH, SEQ = 3, 9


def _host_index(index: object) -> bool:
    """An index torch has to build on the host, or whose result size needs the host."""
    parts = index if isinstance(index, tuple) else (index,)
    for part in parts:
        if isinstance(part, list):
            return True
        if isinstance(part, torch.Tensor) and (
            part.dtype == torch.bool or part.device.type == "cpu"
        ):
            return True
    return False


class HostSyncRecorder(TorchFunctionMode):
    """Records torch calls that would build host tensors or wait on the device."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []

    def _record(self, what: str) -> None:
        frames = [
            f for f in traceback.extract_stack()[:-2] if "site-packages/torch/" not in f.filename
        ]
        ours = [f for f in frames if Path(f.filename).is_relative_to(SOURCE_ROOT)]
        where = (ours or frames)[-3:]
        self.events.append(
            f"{what} at "
            + " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in reversed(where))
        )

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", repr(func))
        if name in HOST_READS or name in DATA_DEPENDENT:
            self._record(f"{name}()")
        elif name in HOST_DATA and args and not isinstance(args[0], torch.Tensor):
            self._record(f"{name}(host data)")
        elif name == "where" and len(args) + len(kwargs) == 1:
            self._record("where(condition)")
        elif name == "repeat_interleave" and kwargs.get("output_size") is None:
            repeats = args[1] if len(args) > 1 else kwargs.get("repeats")
            if isinstance(repeats, torch.Tensor):
                self._record("repeat_interleave(tensor repeats) without output_size")
        elif name in INDEXING and len(args) > 1 and _host_index(args[1]):
            self._record(f"{name} with a list, bool or CPU index")
        out = func(*args, **kwargs)
        results = out if isinstance(out, (tuple, list)) else (out,)
        if any(isinstance(r, torch.Tensor) and r.device.type == "cpu" for r in results):
            self._record(f"{name}() returned a CPU tensor")
        return out


@contextlib.contextmanager
def no_host_sync() -> Iterator[HostSyncRecorder]:
    """Fails with every recorded event, also when one of them made the pass raise on meta."""
    recorder = HostSyncRecorder()
    try:
        with recorder:
            yield recorder
    except Exception as err:
        if recorder.events:
            raise AssertionError(_report(recorder)) from err
        raise
    assert not recorder.events, _report(recorder)


def _report(recorder: HostSyncRecorder) -> str:
    return "host-device syncs or host tensors:\n" + "\n".join(dict.fromkeys(recorder.events))


@functools.cache
def _backbone(attn: str) -> nn.Module:
    cfg = {**model_cfg("tiny"), "tokenizer": None, "attn_implementation": attn}
    return load_backbone(cfg).model


def encoder_on_meta(methods: Mapping[str, dict], attn: str = "sdpa") -> AdapterEncoder:
    """The tiny model with ``methods`` (task -> method config), built on CPU, moved to meta."""
    encoder = AdapterEncoder(copy.deepcopy(_backbone(attn)))
    encoder.freeze_backbone()
    torch.manual_seed(0)
    for task, cfg in methods.items():
        build_method(cfg).apply(encoder, task)
    return encoder.eval().to("meta")


def inputs(masked: bool) -> dict[str, torch.Tensor | None]:
    ids = torch.zeros(BATCH, SEQ, dtype=torch.long).to("meta")
    mask = torch.ones(BATCH, SEQ, dtype=torch.long).to("meta") if masked else None
    return {"input_ids": ids, "attention_mask": mask}


PFEIFFER = {"name": "pfeiffer", "init": "bert"}
SINGLE = {
    "pfeiffer": {"t": PFEIFFER},
    "houlsby": {"t": {"name": "houlsby", "init": "bert"}},
    "adapterbias": {"t": {"name": "adapterbias"}},
    "coda": {"t": {"name": "coda", "init": "bert"}},
    "lora": {"t": {"name": "lora"}},
    "fusion": {
        "a": PFEIFFER,
        "b": {**PFEIFFER, "reduction_factor": 8},
        "t": {"name": "fusion", "adapters": ["a", "b"]},
    },
    "fusion_plain": {
        "a": PFEIFFER,
        "b": {**PFEIFFER, "reduction_factor": 8},
        "t": {"name": "fusion", "adapters": ["a", "b"], "fast_path": False},
    },
    "fusion_residual_before": {
        "a": PFEIFFER,
        "b": PFEIFFER,
        "t": {"name": "fusion", "adapters": ["a", "b"], "residual_before": True},
    },
}
MASKS = pytest.mark.parametrize("masked", [False, True], ids=["mask_none", "mask"])


def training_step(encoder: AdapterEncoder, tasks: list[str], **kwargs) -> None:
    """Forward of a training step under the recorder, then its backward; grads stay on meta."""
    encoder.train()
    with no_host_sync():
        out = encoder(tasks=tasks, **kwargs)
        loss = torch.stack([hidden.sum() for hidden in out.values()]).sum()
        for task in tasks:
            if any(type(m).__name__ == "FusionLayer" for m in encoder.modules_of(task).values()):
                loss = loss + fusion_regularization_loss(encoder, task)
    loss.backward()
    grads = [p.grad for p in encoder.parameters() if p.requires_grad and p.grad is not None]
    assert grads and all(g.device.type == "meta" for g in grads)  # dropped layers get none


@MASKS
@pytest.mark.parametrize("method", SINGLE)
def test_single_task_forward_and_training_step(method, masked):
    encoder = encoder_on_meta(SINGLE[method])
    batch = inputs(masked)
    for dropped in (0, 1):
        with torch.no_grad(), no_host_sync():
            out = encoder(tasks="t", dropped_layers=dropped, **batch)
        assert out["t"].device.type == "meta"
        assert out["t"].shape == (BATCH, SEQ, encoder.hidden_size)
    training_step(encoder, ["t"], **batch)


@MASKS
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("method", ["pfeiffer", "coda"])
def test_both_attention_kernels(method, attn, masked):
    encoder = encoder_on_meta(SINGLE[method], attn)
    batch = inputs(masked)
    with torch.no_grad(), no_host_sync():
        encoder(tasks="t", **batch)


THREE_MIXED = {
    "a": PFEIFFER,
    "b": {"name": "houlsby", "init": "bert"},
    "c": {"name": "adapterbias"},
}
THREE_SAME = {"a": PFEIFFER, "b": PFEIFFER, "c": PFEIFFER}
FUSED = {
    "a": PFEIFFER,
    "b": {**PFEIFFER, "reduction_factor": 8},
    "f": {"name": "fusion", "adapters": ["a", "b"]},
}
MULTI = {
    # three methods in one pass, all dropping layer 0
    "three_methods_dropped": (THREE_MIXED, 1),
    # per-task depths: streams branch at layers 0, 1 and 2
    "three_methods_mixed_depths": (THREE_MIXED, {"a": 0, "b": 2, "c": 1}),
    # same-shaped adapters run batched; two own streams while the third still shares one
    "batched_mixed_depths": (THREE_SAME, {"a": 0, "b": 0, "c": 2}),
    "batched_dropped": (THREE_SAME, 1),
    # fusion next to the adapters it fuses, each at its own depth
    "fusion_mixed_depths": (FUSED, {"a": 1, "b": 0, "f": 2}),
}


@MASKS
@pytest.mark.parametrize("case", MULTI)
def test_multi_task_pass_and_training_step(case, masked):
    methods, dropped = MULTI[case]
    encoder = encoder_on_meta(methods)
    tasks = list(methods)
    batch = inputs(masked)
    with torch.no_grad(), no_host_sync():
        out = encoder(tasks=tasks, dropped_layers=dropped, **batch)
    assert sorted(out) == sorted(tasks)
    assert all(h.device.type == "meta" for h in out.values())
    if case.startswith("fusion"):  # fusion trains with its sources frozen
        for task in ("a", "b"):
            for module in encoder.modules_of(task).values():
                module.requires_grad_(False)
    training_step(encoder, tasks, dropped_layers=dropped, **batch)


def test_cached_indices_from_inference_mode_serve_a_later_training_step():
    """Index tensors cached by an ``inference_mode`` pass may be saved for a later backward."""
    encoder = AdapterEncoder(copy.deepcopy(_backbone("sdpa")))
    encoder.freeze_backbone()
    for task in THREE_SAME:
        build_method({**PFEIFFER, "init": "bert"}).apply(encoder, task)
    ids = torch.randint(5, 1000, (BATCH, SEQ), generator=torch.Generator().manual_seed(0))
    depths = {"a": 0, "b": 0, "c": 2}  # index_add and index_select on stream subsets
    with torch.inference_mode():
        expected = encoder(ids, tasks=list(THREE_SAME), dropped_layers=depths)
    out = encoder(ids, tasks=list(THREE_SAME), dropped_layers=depths)
    torch.stack([h.sum() for h in out.values()]).sum().backward()
    for task in THREE_SAME:
        torch.testing.assert_close(out[task], expected[task], rtol=0, atol=0)
    assert all(p.grad is not None for p in encoder.trainable("a"))


@MASKS
def test_recording_fusion_activations_stays_on_the_device(masked):
    encoder = encoder_on_meta(FUSED)
    batch = inputs(masked)
    with record_fusion_activations(encoder, "f"), torch.no_grad(), no_host_sync():
        encoder(tasks="f", **batch)
        encoder(tasks="f", **batch)


def test_the_recorder_catches_host_tensors_and_syncs():
    x = torch.ones(4, device="meta")
    calls = [
        lambda: torch.arange(4),
        lambda: torch.tensor([1, 2], device="meta"),
        lambda: x + torch.ones(4).to("meta"),
        lambda: x[[0, 1]],
        lambda: x[x > 0],
        lambda: bool(x.all()),
        lambda: x.nonzero(),
        lambda: torch.repeat_interleave(x, x.long()),
        lambda: torch.arange(4, device="meta"),  # fine
        lambda: x[1:, None],  # fine
    ]
    recorder = HostSyncRecorder()
    with recorder:
        for call in calls:
            with contextlib.suppress(RuntimeError, NotImplementedError):  # meta has no data
                call()
    found = "\n".join(recorder.events)
    for what in ("arange()", "ones()", "list, bool or CPU index", "__bool__()", "nonzero()"):
        assert what in found
    assert "repeat_interleave(tensor repeats)" in found
    assert "tensor(host data)" in found
    assert len(recorder.events) == 8, found
