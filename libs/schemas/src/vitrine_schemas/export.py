"""JSON Schemas of whole messages, one per event type and schema version.

`envelope_schema` describes what travels on a topic: the envelope with the event's
payload in `data`, `type` and `schema_version` pinned to the event's own. The files
`export_all` writes (`<event_type>.v<version>.json`) are the record of what was
published; the exporter adds and refreshes files but never deletes one, so the schema
of a retired version stays for as long as its messages may still be read.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vitrine_schemas.envelope import Envelope, Event
from vitrine_schemas.events import ALL_EVENTS

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID_BASE = "https://vitrine.dev/schemas"
EXTENSION_KEY = "x-vitrine"


def schema_id(event_cls: type[Event]) -> str:
    """The `$id` of an event's schema, e.g. https://vitrine.dev/schemas/order.placed/v1.json."""
    return f"{SCHEMA_ID_BASE}/{event_cls.event_type}/v{event_cls.schema_version}.json"


def schema_file_name(event_cls: type[Event]) -> str:
    """The file an event's current schema lives in, e.g. `order.placed.v1.json`."""
    return f"{event_cls.event_type}.v{event_cls.schema_version}.json"


def summary(event_cls: type[Event]) -> str:
    """First line of the event class's own docstring ('' when it has none)."""
    doc = event_cls.__dict__.get("__doc__")
    if not doc:
        return ""
    return inspect.cleandoc(doc).splitlines()[0].strip()


def envelope_schema(event_cls: type[Event]) -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of one whole message of `event_cls`.

    The schema is the envelope's (`Envelope[event_cls]`, validation mode) with `type`
    and `schema_version` pinned by `const`, an `$id` naming the type and version, and
    an `x-vitrine` object giving the topic and the field the message is keyed by.
    """
    schema = Envelope[event_cls].model_json_schema(mode="validation")  # type: ignore[valid-type]
    properties: dict[str, Any] = schema["properties"]
    properties["type"] = {**properties["type"], "const": event_cls.event_type}
    properties["schema_version"] = {
        **properties["schema_version"],
        "const": event_cls.schema_version,
    }
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["$id"] = schema_id(event_cls)
    schema["title"] = f"{event_cls.event_type} v{event_cls.schema_version}"
    description = summary(event_cls)
    schema["description"] = (
        f"A `{event_cls.event_type}` message: {description}"
        if description
        else f"A `{event_cls.event_type}` message."
    )
    schema[EXTENSION_KEY] = {
        "event_type": event_cls.event_type,
        "schema_version": event_cls.schema_version,
        "model": event_cls.__name__,
        "topic": event_cls.topic,
        "partition_key": f"data.{event_cls.partition_field}",
    }
    return schema


def dumps_schema(schema: dict[str, Any]) -> str:
    """The canonical text of a schema file: sorted keys, indent 2, trailing newline."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_all(events: Iterable[type[Event]] = ALL_EVENTS) -> dict[str, str]:
    """File name -> canonical text for the current version of every event."""
    rendered: dict[str, str] = {}
    for event_cls in events:
        name = schema_file_name(event_cls)
        if name in rendered:
            raise ValueError(f"two event classes claim {name}")
        rendered[name] = dumps_schema(envelope_schema(event_cls))
    return rendered


def export_all(directory: Path | str, events: Iterable[type[Event]] = ALL_EVENTS) -> list[Path]:
    """Write the current schema of every event into `directory`; return the paths.

    Files are rewritten only when their text changed, and files of other versions
    (retired or not) are left as they are: nothing is ever deleted.
    """
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, text in render_all(events).items():
        path = target / name
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def events_table(events: Iterable[type[Event]] = ALL_EVENTS) -> str:
    """A Markdown table of the events: type, version, topic, key and what it means."""
    rows = [
        "| type | version | topic | key | description |",
        "| --- | --- | --- | --- | --- |",
    ]
    for event_cls in events:
        description = summary(event_cls).replace("|", "\\|") or "—"
        rows.append(
            f"| `{event_cls.event_type}` | {event_cls.schema_version} | `{event_cls.topic}`"
            f" | `{event_cls.partition_field}` | {description} |"
        )
    return "\n".join(rows) + "\n"
