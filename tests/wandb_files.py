"""Read an offline W&B run back from its ``run-<id>.wandb`` file: what the tracking tests check
a run logged (no W&B service, no network)."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_BLOCK = 32768
_HEADER = 7


def _wandb_file_records(path: Path) -> Iterator[bytes]:
    """The records of a ``run-<id>.wandb`` file (a LevelDB-style log: a 7-byte file header,
    then 32 KiB blocks of records with a 7-byte header each, split across blocks)."""
    data = Path(path).read_bytes()
    ident, magic, _version = struct.unpack("<4sHB", data[:_HEADER])
    if ident != b":W&B" or magic != 0xBEE1:
        raise ValueError(f"{path} is not a W&B run file")
    pos, pending = _HEADER, b""
    while pos + _HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _HEADER:
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        if kind == 0 and length == 0:  # zero padding to the block's end
            pos += left
            continue
        chunk = data[pos + _HEADER : pos + _HEADER + length]
        pos += _HEADER + length
        if kind == 1:
            yield chunk
        elif kind == 2:
            pending = chunk
        elif kind == 3:
            pending += chunk
        elif kind == 4:
            yield pending + chunk
            pending = b""


def read_offline_run(run_dir: Path | str) -> dict[str, Any]:
    """What an offline run holds, from its ``.wandb`` file: name, group, tags, job type, the
    config (key -> JSON), every history key logged, the media logged (key -> ``table-file``,
    ``image-file``, ...), the artifacts (name, type, files) and the run's files."""
    from wandb.proto import wandb_internal_pb2 as pb

    run_dir = Path(run_dir)
    [path] = run_dir.glob("run-*.wandb")
    out: dict[str, Any] = {
        "config": {},
        "history": set(),
        "media": {},
        "artifacts": [],
        "files": [],
    }
    for data in _wandb_file_records(path):
        record = pb.Record()
        record.ParseFromString(data)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            out |= {
                "id": run.run_id,
                "name": run.display_name,
                "group": run.run_group,
                "job_type": run.job_type,
                "tags": list(run.tags),
                "project": run.project,
            }
            out["config"] |= {item.key: item.value_json for item in run.config.update}
        elif kind == "config":
            out["config"] |= {item.key: item.value_json for item in record.config.update}
        elif kind == "history":
            for item in record.history.item:
                key = item.key or "/".join(item.nested_key)
                out["history"].add(key)
                if key.endswith("/_type"):
                    out["media"][key.removesuffix("/_type")] = json.loads(item.value_json)
        elif kind == "artifact":
            artifact = record.artifact
            files = [entry.path for entry in artifact.manifest.contents]
            out["artifacts"].append({"name": artifact.name, "type": artifact.type, "files": files})
        elif kind == "files":
            out["files"] += [f.path for f in record.files.files]
    return out
