"""tests/tools/build_script_assets.py: dump files in, Core's script_assets_test.json layout out."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

CORE_FILE = Path(__file__).resolve().parents[1] / "data" / "core" / "script_assets_test.json"


def _builder() -> ModuleType:
    path = Path(__file__).with_name("build_script_assets.py")
    spec = importlib.util.spec_from_file_location("build_script_assets", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dump(directory: Path, case: dict[str, object]) -> str:
    raw = (json.dumps(case) + ",\n").encode()
    name = hashlib.sha1(raw).hexdigest()
    (directory / name[0]).mkdir(exist_ok=True)
    (directory / name[0] / name).write_bytes(raw)
    return name


def test_joins_dump_files_in_name_order(tmp_path: Path) -> None:
    builder = _builder()
    names = {_dump(tmp_path, {"comment": f"case {i}"}): i for i in range(5)}
    cases = builder.read_cases(tmp_path)
    assert [name for name, _ in cases] == sorted(names)
    joined = builder.join(cases)
    assert joined.startswith(b"[\n{") and joined.endswith(b"}\n]\n")
    assert [c["comment"] for c in json.loads(joined)] == [f"case {names[n]}" for n in sorted(names)]
    assert len(json.loads(builder.join(cases, every=2))) == 3


def test_refuses_a_file_not_named_by_its_sha1(tmp_path: Path) -> None:
    builder = _builder()
    name = _dump(tmp_path, {"comment": "x"})
    (tmp_path / name[0] / name).write_bytes(b'{"comment": "y"},\n')
    with pytest.raises(SystemExit):
        builder.read_cases(tmp_path)


def test_the_committed_file_has_the_builders_layout() -> None:
    raw = CORE_FILE.read_bytes()
    assert raw.startswith(b"[\n{") and raw.endswith(b"}\n]\n")
    lines = raw.split(b"\n")[1:-2]
    assert len(lines) == 2760
    assert all(line.endswith(b"},") for line in lines[:-1]) and lines[-1].endswith(b"}")
