"""Trained adapters as files: saved exactly, loaded into a fresh encoder of the same backbone
under any task name with bit-equal outputs, refused by any other backbone, found by config."""

from __future__ import annotations

import json
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

from adapterdrop.artefacts import (
    BACKBONE_FILE,
    SIDECAR_FILE,
    TENSORS_FILE,
    ArtefactError,
    artefact_folder,
    find_artefact,
    load_artefact,
    read_artefact,
    save_artefact,
)
from adapterdrop.data.identity import file_digest
from adapterdrop.engine import AdapterEncoder
from adapterdrop.heads import MultiTaskModel
from adapterdrop.methods import build_method
from adapterdrop.models import load_backbone
from adapterdrop.results import point_id
from conftest import method_cfg, model_cfg

METHODS = [
    "pfeiffer",
    "houlsby",
    "lora",
    "adapterbias",
    "coda",
    "full",
    "pfeiffer-shared",
    "adapterbias-ln",
]
LABELS = 3


def fresh_model(seed: int = 0, **architecture) -> MultiTaskModel:
    cfg = {**model_cfg("tiny"), "tokenizer": None}
    cfg["architecture"] = {**cfg["architecture"], **architecture}
    encoder = AdapterEncoder(load_backbone(cfg, seed=seed).model)
    encoder.freeze_backbone()
    return MultiTaskModel(encoder)


def trained(model: MultiTaskModel, task: str, cfg: dict, seed: int = 1) -> MultiTaskModel:
    """``task`` built by its method and every trainable tensor moved off its initial value,
    as training would (zero-initialised up-projections would hide a weight left unloaded)."""
    build_method(cfg).apply(model.encoder, task)
    model.add_head(task, LABELS)
    generator = torch.Generator().manual_seed(seed)
    params = [*model.encoder.trainable(task), *model.heads[task].parameters()]
    with torch.no_grad():
        for param in params:
            param.add_(0.05 * torch.randn(param.shape, generator=generator))
    return model.eval()


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (3, 12), generator=generator)
    mask = (torch.arange(12) < torch.tensor([[12], [7], [3]])).long()
    return ids * mask, mask


def logits(model: MultiTaskModel, tasks, dropped=0) -> dict[str, torch.Tensor]:
    ids, mask = batch()
    with torch.no_grad():
        return model.eval()(ids, mask, tasks=tasks, dropped_layers=dropped)


@pytest.mark.parametrize("method", METHODS)
def test_a_saved_task_loads_into_a_fresh_encoder_with_equal_outputs(tmp_path, method):
    cfg = method_cfg(method)
    model = trained(fresh_model(), "glue/rte", cfg)
    expected = {n: logits(model, "glue/rte", n)["glue/rte"] for n in (0, 2)}
    folder = save_artefact(model, "glue/rte", tmp_path / "a", cfg, backbone_name="tiny")

    saved = load_file(str(folder / TENSORS_FILE))
    encoder = model.encoder
    own = sum(p.numel() for p in encoder.trainable("glue/rte"))
    head = sum(p.numel() for p in model.heads["glue/rte"].parameters())
    if method == "full":  # the whole backbone state, buffers included, in a file of its own
        assert own == sum(p.numel() for p in encoder.backbone.parameters())
        backbone = load_file(str(folder / BACKBONE_FILE))
        assert set(backbone) == {f"backbone.{k}" for k in encoder.backbone.state_dict()}
        assert sum(t.numel() for t in saved.values()) == head
    else:  # exactly what training updates, and the head
        assert sum(t.numel() for t in saved.values()) == own + head
        assert not (folder / BACKBONE_FILE).exists()
    meta = json.loads((folder / SIDECAR_FILE).read_text())
    assert meta["method"] == cfg and meta["num_labels"] == LABELS and meta["task"] == "glue/rte"
    assert meta["backbone"]["name"] == "tiny" and meta["backbone"]["num_layers"] == 4
    assert (meta["backbone"]["weights"] is None) == (method == "full")

    other = trained(fresh_model(), "glue/rte", cfg, seed=9)  # other weights, other outputs
    assert not torch.allclose(logits(other, "glue/rte")["glue/rte"], expected[0])

    fresh = fresh_model()
    assert load_artefact(folder, fresh) == "glue/rte"
    for n, want in expected.items():
        assert torch.equal(logits(fresh, "glue/rte", n)["glue/rte"], want)


def test_tasks_of_one_fine_tuned_model_share_one_backbone_file_and_each_loads_alone(tmp_path):
    """Multi-task full fine-tuning: one backbone, a head per task, saved once on disk."""
    cfg = method_cfg("full")
    model = trained(trained(fresh_model(), "a", cfg), "b", cfg, seed=2)
    want = logits(model, ["a", "b"])
    first = save_artefact(model, "a", tmp_path / "a", cfg)
    second = save_artefact(model, "b", tmp_path / "b", cfg, same_backbone_as=first)
    one, two = (os.stat(folder / BACKBONE_FILE) for folder in (first, second))
    assert (one.st_ino, one.st_nlink) == (two.st_ino, 2)
    other = trained(fresh_model(), "b", cfg, seed=3)  # another backbone: written, not linked
    third = save_artefact(other, "b", tmp_path / "c", cfg, same_backbone_as=first)
    assert os.stat(third / BACKBONE_FILE).st_ino != one.st_ino
    for folder, task in ((first, "a"), (second, "b")):
        fresh = fresh_model()
        load_artefact(folder, fresh)
        assert torch.equal(logits(fresh, task)[task], want[task])


def test_a_format_1_artefact_with_its_backbone_in_the_adapter_file_still_loads(tmp_path):
    cfg = method_cfg("full")
    model = trained(fresh_model(), "t", cfg)
    folder = save_artefact(model, "t", tmp_path / "v1", cfg)
    tensors = {**load_file(str(folder / TENSORS_FILE)), **load_file(str(folder / BACKBONE_FILE))}
    (folder / BACKBONE_FILE).unlink()
    save_file(tensors, str(folder / TENSORS_FILE))
    meta = json.loads((folder / SIDECAR_FILE).read_text())
    del meta["backbone_tensors"]
    meta["format_version"] = 1
    meta["tensors"]["sha256"] = file_digest(folder / TENSORS_FILE, length=None)
    (folder / SIDECAR_FILE).write_text(json.dumps(meta))
    fresh = fresh_model()
    load_artefact(folder, fresh)
    assert torch.equal(logits(fresh, "t")["t"], logits(model, "t")["t"])


def test_a_new_name_beside_other_tasks_gives_the_same_outputs(tmp_path):
    model = trained(fresh_model(), "glue/rte", method_cfg("pfeiffer"))
    trained(model, "glue/mrpc", method_cfg("houlsby"), seed=2)
    want = logits(model, ["glue/rte", "glue/mrpc"], {"glue/rte": 1, "glue/mrpc": 0})
    rte = save_artefact(model, "glue/rte", tmp_path / "rte", method_cfg("pfeiffer"))
    mrpc = save_artefact(model, "glue/mrpc", tmp_path / "mrpc", method_cfg("houlsby"))

    fresh = fresh_model()
    trained(fresh, "other", method_cfg("adapterbias"), seed=3)
    assert load_artefact(mrpc, fresh, "b") == "b"
    assert load_artefact(rte, fresh, "a") == "a"
    got = logits(fresh, ["a", "b", "other"], {"a": 1, "b": 0, "other": 0})
    assert torch.equal(got["a"], want["glue/rte"]) and torch.equal(got["b"], want["glue/mrpc"])
    with pytest.raises(ArtefactError, match="task 'a' already exists"):
        load_artefact(rte, fresh, "a")


def test_lora_loads_under_a_new_name(tmp_path):
    """peft names LoRA weights after their task: the artefact stores the name as {task}."""
    cfg = method_cfg("lora")
    model = trained(fresh_model(), "glue/rte", cfg)
    want = logits(model, "glue/rte")["glue/rte"]
    folder = save_artefact(model, "glue/rte", tmp_path / "lora", cfg)
    assert any(".{task}." in key for key in load_file(str(folder / TENSORS_FILE)))
    fresh = fresh_model()
    load_artefact(folder, fresh, "renamed")
    assert torch.equal(logits(fresh, "renamed")["renamed"], want)


def test_backbone_changers_need_an_encoder_of_their_own(tmp_path):
    lora = trained(fresh_model(), "t", method_cfg("lora"))
    lora_folder = save_artefact(lora, "t", tmp_path / "lora", method_cfg("lora"))
    pfeiffer = trained(fresh_model(), "p", method_cfg("pfeiffer"))
    pfeiffer_folder = save_artefact(pfeiffer, "p", tmp_path / "p", method_cfg("pfeiffer"))
    holding = trained(fresh_model(), "other", method_cfg("pfeiffer"))
    with pytest.raises(ArtefactError, match="changes the backbone.*holds tasks \\['other'\\]"):
        load_artefact(lora_folder, holding)
    with pytest.raises(ArtefactError, match=r"task\(s\) \['t'\] of this encoder changed"):
        load_artefact(pfeiffer_folder, lora)


def test_fusion_loads_after_the_tasks_it_fuses(tmp_path):
    model = fresh_model()
    folders = {}
    for i, task in enumerate(("a", "b")):
        trained(model, task, method_cfg("pfeiffer"), seed=i)
        folders[task] = save_artefact(model, task, tmp_path / task, method_cfg("pfeiffer"))
    fusion = method_cfg("fusion", adapters=["a", "b"])
    trained(model, "f", fusion, seed=5)
    want = logits(model, "f")["f"]
    folder = save_artefact(model, "f", tmp_path / "f", fusion)

    fresh = fresh_model()
    with pytest.raises(ValueError, match="needs distinct adapters"):
        load_artefact(folder, fresh)
    assert "f" not in fresh.encoder.tasks and "f" not in fresh.heads
    for task in ("a", "b"):
        load_artefact(folders[task], fresh)
    load_artefact(folder, fresh)
    assert torch.equal(logits(fresh, "f")["f"], want)


@pytest.mark.parametrize(
    ("other", "differs"),
    [({"seed": 1}, "weights"), ({"hidden_size": 32}, "hidden_size, architecture")],
)
def test_another_backbone_is_refused_naming_both(tmp_path, other, differs):
    cfg = method_cfg("pfeiffer")
    model = trained(fresh_model(), "glue/rte", cfg)
    folder = save_artefact(model, "glue/rte", tmp_path / "a", cfg, backbone_name="tiny")
    seed = other.pop("seed", 0)
    target = fresh_model(seed, **other)
    with pytest.raises(ArtefactError) as err:
        load_artefact(folder, target, backbone_name="tiny-other")
    message = str(err.value)
    assert "was trained on backbone tiny (bert, hidden 64, 4 layers" in message
    assert "this encoder's backbone is tiny-other (bert, hidden " in message
    assert f"differs in {differs}" in message
    assert target.encoder.tasks == [] and len(target.heads) == 0


def test_a_config_that_does_not_rebuild_the_method_is_refused(tmp_path):
    model = trained(fresh_model(), "t", method_cfg("pfeiffer"))
    with pytest.raises(ArtefactError, match="does not rebuild task 't'"):
        save_artefact(model, "t", tmp_path / "a", method_cfg("houlsby"))
    assert not (tmp_path / "a").exists()


def test_a_save_replaces_the_folder_whole_and_a_damaged_file_is_refused(tmp_path):
    cfg = method_cfg("pfeiffer")
    model = trained(fresh_model(), "t", cfg)
    folder = tmp_path / "a"
    save_artefact(model, "t", folder, cfg)
    (tmp_path / ".a.x.tmp").mkdir()  # left by a killed writer
    save_artefact(model, "t", folder, cfg)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
    assert sorted(p.name for p in folder.iterdir()) == [SIDECAR_FILE, TENSORS_FILE]
    with open(folder / TENSORS_FILE, "r+b") as fh:
        fh.seek(-1, 2)
        fh.write(b"\x00" if fh.read(1) != b"\x00" else b"\x01")
    with pytest.raises(ArtefactError, match="does not match the digest"):
        load_artefact(folder, fresh_model())
    with pytest.raises(ArtefactError, match="holds no saved adapter"):
        read_artefact(tmp_path / "nothing")


def test_find_artefact_by_its_training_config(tmp_path):
    cfg = method_cfg("pfeiffer")
    model = trained(fresh_model(), "t", cfg)
    config = {"model": {"name": "tiny"}, "method": cfg, "data": {"task": "t"}, "seed": 0}
    assert find_artefact(tmp_path, "exp", config) is None
    pid = point_id(config)
    training = {"experiment": "exp", "point_id": pid, "config": config}
    folder = artefact_folder(tmp_path, "exp", pid)
    save_artefact(model, "t", folder, cfg, training=training)
    assert find_artefact(tmp_path, "exp", config) == folder
    assert find_artefact(tmp_path, "exp", {**config, "seed": 1}) is None
    assert find_artefact(tmp_path, "other", config) is None
    (folder / SIDECAR_FILE).write_text("{")
    with pytest.warns(UserWarning, match="ignoring a broken artefact"):
        assert find_artefact(tmp_path, "exp", config) is None
