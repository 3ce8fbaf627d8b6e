"""The committed contracts hold: schemas, topic registry, generator.

The central test: for every event, the committed schema of its current version exists
and the schema the code generates now breaks nothing in it. Changing a model
incompatibly without bumping its `schema_version` fails here, with the reasons.
This module does not import the examples, so a model change that invalidates an example
still gets its contract verdict here (the examples are tested in test_schema_envelope).
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from vitrine_schemas.compat import breaking_changes
from vitrine_schemas.envelope import Event
from vitrine_schemas.events import ALL_EVENTS, EVENTS_BY_TYPE
from vitrine_schemas.export import (
    JSON_SCHEMA_DIALECT,
    envelope_schema,
    events_table,
    export_all,
    schema_file_name,
    schema_id,
)
from vitrine_schemas.topics import TOPICS, TOPICS_BY_NAME

REPO = Path(__file__).resolve().parents[3]
SCHEMA_DIR = REPO / "libs" / "schemas" / "jsonschema"
README = REPO / "libs" / "schemas" / "README.md"
FILE_NAME = re.compile(r"^(?P<type>[a-z_]+\.[a-z_]+)\.v(?P<version>[1-9][0-9]*)\.json$")


def _ids(events: tuple[type[Event], ...]) -> list[str]:
    return [f"{cls.event_type}.v{cls.schema_version}" for cls in events]


# --- committed schemas ------------------------------------------------------------------


@pytest.mark.parametrize("event_cls", ALL_EVENTS, ids=_ids(ALL_EVENTS))
def test_committed_schema_is_compatible_with_the_model(event_cls: type[Event]) -> None:
    path = SCHEMA_DIR / schema_file_name(event_cls)
    assert path.exists(), (
        f"{path.relative_to(REPO)} is missing: a new event or a new schema_version;"
        " run `python tools/gen_contracts.py` and commit the file"
    )
    committed = json.loads(path.read_text(encoding="utf-8"))
    problems = breaking_changes(committed, envelope_schema(event_cls))
    assert not problems, (
        f"{event_cls.__name__} changed incompatibly within schema_version"
        f" {event_cls.schema_version}; bump schema_version (keeping the old file) or undo:\n"
        + "\n".join(f"  - {problem}" for problem in problems)
    )


def test_every_committed_schema_file_is_named_after_its_id_and_version() -> None:
    files = sorted(SCHEMA_DIR.glob("*.json"))
    assert files, f"no schemas under {SCHEMA_DIR}"
    for path in files:
        match = FILE_NAME.match(path.name)
        assert match, f"{path.name}: not `<event_type>.v<version>.json`"
        schema = json.loads(path.read_text(encoding="utf-8"))
        event_type, version = match["type"], int(match["version"])
        assert schema["$schema"] == JSON_SCHEMA_DIALECT
        assert schema["$id"] == f"https://vitrine.dev/schemas/{event_type}/v{version}.json"
        assert schema["properties"]["type"]["const"] == event_type
        assert schema["properties"]["schema_version"]["const"] == version
        assert schema["x-vitrine"]["event_type"] == event_type
        assert schema["x-vitrine"]["schema_version"] == version


def test_committed_files_are_canonical_json() -> None:
    for path in SCHEMA_DIR.glob("*.json"):
        text = path.read_text(encoding="utf-8")
        canonical = json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False)
        assert text == canonical + "\n", f"{path.name} is not in the exporter's format"


# --- the exported schema itself ---------------------------------------------------------


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


@pytest.mark.parametrize("event_cls", ALL_EVENTS, ids=_ids(ALL_EVENTS))
def test_envelope_schema_pins_type_version_and_topic(event_cls: type[Event]) -> None:
    schema = envelope_schema(event_cls)
    assert schema["$schema"] == JSON_SCHEMA_DIALECT
    assert schema["$id"] == schema_id(event_cls)
    assert schema["$id"].endswith(f"/{event_cls.event_type}/v{event_cls.schema_version}.json")
    assert schema["properties"]["type"]["const"] == event_cls.event_type
    assert schema["properties"]["schema_version"]["const"] == event_cls.schema_version
    assert schema["x-vitrine"]["topic"] == event_cls.topic
    assert schema["x-vitrine"]["partition_key"] == f"data.{event_cls.partition_field}"
    assert event_cls.partition_field in schema["$defs"][event_cls.__name__]["properties"]
    assert set(schema["required"]) >= {"type", "schema_version", "data", "event_id"}
    for ref in _refs(schema):
        assert ref.startswith("#/$defs/"), ref
        assert ref.removeprefix("#/$defs/") in schema["$defs"], f"dangling {ref}"


def test_export_all_writes_one_file_per_event_and_never_deletes(tmp_path: Path) -> None:
    retired = tmp_path / "order.placed.v0.json"
    retired.write_text('{"title": "a retired version"}\n', encoding="utf-8")

    paths = export_all(tmp_path)

    assert sorted(p.name for p in paths) == sorted(schema_file_name(c) for c in ALL_EVENTS)
    assert retired.read_text(encoding="utf-8") == '{"title": "a retired version"}\n'
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert text.endswith("}\n")
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True,
                                  ensure_ascii=False) + "\n"  # fmt: skip


# --- topic registry -----------------------------------------------------------------------


def test_every_topic_lists_only_known_event_types() -> None:
    for topic in TOPICS:
        for event_type in topic.event_types:
            assert event_type in EVENTS_BY_TYPE, f"{topic.name} lists unknown {event_type!r}"
            assert EVENTS_BY_TYPE[event_type].topic == topic.name, (
                f"{topic.name} lists {event_type!r}, which is published to"
                f" {EVENTS_BY_TYPE[event_type].topic!r}"
            )


@pytest.mark.parametrize("event_cls", ALL_EVENTS, ids=_ids(ALL_EVENTS))
def test_every_event_is_registered_on_its_topic(event_cls: type[Event]) -> None:
    assert event_cls.topic in TOPICS_BY_NAME, f"{event_cls.topic!r} is not in the registry"
    topic = TOPICS_BY_NAME[event_cls.topic]
    assert event_cls.event_type in topic.event_types
    assert topic.key == event_cls.partition_field, (
        f"{topic.name} is keyed by {topic.key!r}, {event_cls.event_type} by"
        f" {event_cls.partition_field!r}"
    )
    assert event_cls.partition_field in event_cls.model_fields


def test_event_types_are_unique_and_well_formed() -> None:
    assert len(EVENTS_BY_TYPE) == len(ALL_EVENTS)
    for cls in ALL_EVENTS:
        assert re.fullmatch(r"[a-z_]+\.[a-z_]+", cls.event_type), cls.event_type
        assert cls.schema_version >= 1


# --- the generator (tools/gen_contracts.py) -----------------------------------------------


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    path = REPO / "tools" / "gen_contracts.py"
    spec = importlib.util.spec_from_file_location("gen_contracts", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_contracts", module)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Path, Path]:
    readme = tmp_path / "README.md"
    readme.write_text(
        "# contracts\n\n<!-- events:start -->\nstale\n<!-- events:end -->\n\nafter\n",
        encoding="utf-8",
    )
    return tmp_path / "jsonschema", readme


def test_generator_check_fails_until_generated(
    gen: ModuleType, workspace: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    schema_dir, readme = workspace
    args = ["--schema-dir", str(schema_dir), "--readme", str(readme)]

    assert gen.main([*args, "--check"]) == 1
    assert "missing" in capsys.readouterr().out

    assert gen.main(args) == 0
    assert sorted(p.name for p in schema_dir.iterdir()) == sorted(
        schema_file_name(c) for c in ALL_EVENTS
    )
    text = readme.read_text(encoding="utf-8")
    assert events_table() in text
    assert "stale" not in text
    assert text.startswith("# contracts\n")
    assert text.endswith("<!-- events:end -->\n\nafter\n")

    capsys.readouterr()
    assert gen.main([*args, "--check"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_generator_check_reports_a_stale_readme_table(
    gen: ModuleType, workspace: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    schema_dir, readme = workspace
    gen.write(schema_dir, readme)
    readme.write_text(readme.read_text(encoding="utf-8").replace("| 1 |", "| 9 |", 1))
    assert gen.main(["--schema-dir", str(schema_dir), "--readme", str(readme), "--check"]) == 1
    assert "events table out of date" in capsys.readouterr().out


def test_generator_refuses_to_overwrite_a_published_schema_incompatibly(
    gen: ModuleType, workspace: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    schema_dir, readme = workspace
    gen.write(schema_dir, readme)
    # Pretend the published order.placed v1 had a field the code no longer has.
    path = schema_dir / "order.placed.v1.json"
    published = json.loads(path.read_text(encoding="utf-8"))
    published["$defs"]["OrderPlaced"]["properties"]["coupon"] = {"type": "string"}
    path.write_text(json.dumps(published), encoding="utf-8")
    args = ["--schema-dir", str(schema_dir), "--readme", str(readme)]

    assert gen.main([*args, "--check"]) == 1
    out = capsys.readouterr().out
    assert "order.placed.v1.json: out of date (BREAKING change)" in out
    assert "data.coupon: property removed" in out

    assert gen.main(args) == 1
    assert "data.coupon: property removed" in capsys.readouterr().err
    assert "coupon" in path.read_text(encoding="utf-8")  # left as published

    assert gen.main([*args, "--allow-breaking"]) == 0
    assert "coupon" not in path.read_text(encoding="utf-8")


def test_generator_needs_the_readme_markers(gen: ModuleType) -> None:
    with pytest.raises(ValueError, match="markers"):
        gen.render_readme("# no table here\n", events_table())


def test_committed_contracts_are_current(gen: ModuleType) -> None:
    """`python tools/gen_contracts.py --check` passes on the committed tree."""
    report = gen.compare(SCHEMA_DIR, README)
    assert report.clean, "run `python tools/gen_contracts.py`:\n" + "\n".join(
        report.stale + report.breaking
    )
