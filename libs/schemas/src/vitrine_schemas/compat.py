"""Breaking changes between two JSON Schemas of the same event version.

The rule is backward compatibility: every message valid under the old schema must stay
valid under the new one, because messages already published (and replayed, and sitting
in compacted topics) were written against the old schema. So, within one version:

* adding an optional property is fine;
* removing a property, changing its type (including narrowing an enum, changing a
  const, dropping `null`, changing what an array holds), making an optional property
  required, adding a required property, or tightening a constraint (bounds, lengths,
  pattern, format, additional properties) is breaking.

Widening is not breaking (adding enum values or `null`, loosening a bound, required to
optional), with one deliberate exception: `integer` to `number` is reported, because
code typed `int` (amounts in minor units) would start receiving fractions.

The comparison follows local `$ref`s into `$defs` (recursively, cycles included) and
understands what pydantic generates: `anyOf` unions with `null` for optionals, `allOf`
wrappers around a single `$ref`, `enum`/`const`, arrays with `items`/`prefixItems`,
objects with `properties`/`required`/`additionalProperties`. Descriptions, titles,
examples and defaults are documentation and never breaking.
"""

from __future__ import annotations

import json
from typing import Any

Schema = dict[str, Any]

JSON_TYPES = ("null", "boolean", "object", "array", "number", "string", "integer")
# Keywords whose larger value admits fewer instances, and those whose smaller value does.
LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
EXACT_KEYWORDS = ("pattern", "format", "multipleOf", "contentEncoding", "contentMediaType")
_UNION_KEYS = ("anyOf", "oneOf")


def breaking_changes(old_schema: Schema, new_schema: Schema) -> list[str]:
    """Every way in which `new_schema` rejects messages that `old_schema` accepted.

    Each entry reads `<path>: <what changed>`, the path in dotted form from the root
    of the message (`data.lines[].unit_price.amount_minor`); empty means compatible.
    """
    checker = _Checker(old_schema, new_schema)
    checker.compare(old_schema, new_schema, "")
    return checker.problems


def _describe_value(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


class _Checker:
    def __init__(self, old_root: Schema, new_root: Schema) -> None:
        self.old_root = old_root
        self.new_root = new_root
        self.problems: list[str] = []
        self._in_progress: set[tuple[str, str]] = set()

    # --- helpers ----------------------------------------------------------------------

    def report(self, path: str, message: str) -> None:
        self.problems.append(f"{path or '(root)'}: {message}")

    @staticmethod
    def _lookup(root: Schema, ref: str) -> Schema:
        if not ref.startswith("#"):
            raise ValueError(f"only local $refs are supported, got {ref!r}")
        node: Any = root
        pointer = ref[1:]
        for raw in pointer.split("/")[1:] if pointer else []:
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(node, list):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                raise ValueError(f"unresolvable $ref {ref!r}")
        if not isinstance(node, dict):
            raise ValueError(f"$ref {ref!r} does not point at a schema")
        return node

    def resolve(self, root: Schema, schema: Any) -> tuple[Schema, str]:
        """Follow `$ref`s and single-element `allOf`s; returns the schema and its ref name.

        Sibling keywords of a `$ref` (2020-12 allows them; pydantic puts a field's
        description there) are merged over the target.
        """
        if schema is True or schema is None:
            return {}, ""
        if schema is False:
            return {"not": {}}, ""
        node = dict(schema)
        name = ""
        seen: set[str] = set()
        while True:
            if "$ref" in node:
                ref = node.pop("$ref")
                if ref in seen:
                    raise ValueError(f"$ref cycle without a schema in between: {ref!r}")
                seen.add(ref)
                name = name or ref
                node = {**self._lookup(root, ref), **node}
                continue
            all_of = node.get("allOf")
            if isinstance(all_of, list) and len(all_of) == 1:
                node.pop("allOf")
                inner = all_of[0]
                node = {**(inner if isinstance(inner, dict) else {}), **node}
                continue
            return node, name

    def variants(self, root: Schema, schema: Schema) -> list[Schema]:
        """The alternatives of a (resolved) schema: union members, one per listed type."""
        for key in _UNION_KEYS:
            if isinstance(schema.get(key), list):
                rest = {k: v for k, v in schema.items() if k != key}
                flat: list[Schema] = []
                for member in schema[key]:
                    resolved, name = self.resolve(root, member)
                    merged = {**_constraints_only(rest), **resolved}
                    if name:
                        merged["$ref-name"] = name
                    flat.extend(self.variants(root, merged))
                return flat
        types = schema.get("type")
        if isinstance(types, list):
            return [{**schema, "type": one} for one in types]
        return [schema]

    # --- comparison ---------------------------------------------------------------------

    def compare(self, old: Any, new: Any, path: str) -> None:
        old_node, old_name = self.resolve(self.old_root, old)
        new_node, new_name = self.resolve(self.new_root, new)
        if old_name and new_name:
            key = (old_name, new_name)
            if key in self._in_progress:  # a recursive model: already being compared
                return
            self._in_progress.add(key)
            try:
                self._compare_resolved(old_node, new_node, old_name, new_name, path)
            finally:
                self._in_progress.discard(key)
        else:
            self._compare_resolved(old_node, new_node, old_name, new_name, path)

    def _compare_resolved(
        self, old: Schema, new: Schema, old_name: str, new_name: str, path: str
    ) -> None:
        if old_name:
            old = {**old, "$ref-name": old_name}
        if new_name:
            new = {**new, "$ref-name": new_name}
        old_variants = self.variants(self.old_root, old)
        new_variants = self.variants(self.new_root, new)
        if any(_accepts_anything(v) for v in new_variants):
            return
        old_nullable = any(_is_null(v) for v in old_variants)
        new_nullable = any(_is_null(v) for v in new_variants)
        old_values = [v for v in old_variants if not _is_null(v)]
        new_values = [v for v in new_variants if not _is_null(v)]
        if old_nullable and not new_nullable:
            if new_values:
                self.report(path, "nullable made non-nullable (null no longer allowed)")
            else:
                self.report(path, f"type changed from {_describe(old_variants)} to null")
                return
        if not old_values:
            return
        if len(old_values) == 1 and len(new_values) == 1:
            self._compare_single(old_values[0], new_values[0], path)
            return
        # A union: every old alternative needs a counterpart that accepts it.
        unmatched = []
        for old_variant in old_values:
            partner = _counterpart(old_variant, new_values)
            if partner is None:
                unmatched.append(old_variant)
            else:
                self._compare_single(old_variant, partner, path)
        if unmatched:
            self.report(
                path,
                f"type changed from {_describe(old_values)} to {_describe(new_values)}"
                f" ({_describe(unmatched)} no longer accepted)",
            )

    def _compare_single(self, old: Schema, new: Schema, path: str) -> None:
        if _accepts_anything(new):
            return
        old_types = _types(old)
        new_types = _types(new)
        if not _types_covered(old_types, new_types):
            self.report(path, f"type changed from {_describe([old])} to {_describe([new])}")
            return
        self._compare_values(old, new, path)
        self._compare_bounds(old, new, path)
        if "object" in old_types or "properties" in old or "properties" in new:
            self._compare_objects(old, new, path)
        if "array" in old_types:
            self._compare_arrays(old, new, path)

    def _compare_values(self, old: Schema, new: Schema, path: str) -> None:
        old_allowed = _allowed_values(old)
        new_allowed = _allowed_values(new)
        if new_allowed is None:
            return
        if "const" in new and "enum" not in new:
            if "const" in old and old["const"] != new["const"]:
                self.report(
                    path,
                    f"const changed from {_describe_value(old['const'])}"
                    f" to {_describe_value(new['const'])}",
                )
                return
            if old_allowed is None:
                self.report(path, f"now fixed to const {_describe_value(new['const'])}")
                return
        if old_allowed is None:
            values = ", ".join(_describe_value(v) for v in new_allowed)
            self.report(path, f"now restricted to enum values {values}")
            return
        removed = [v for v in old_allowed if v not in new_allowed]
        if removed:
            what = "enum values" if len(removed) > 1 else "enum value"
            values = ", ".join(_describe_value(v) for v in removed)
            self.report(path, f"{what} removed: {values}")

    def _compare_bounds(self, old: Schema, new: Schema, path: str) -> None:
        for keyword in LOWER_BOUNDS:
            if keyword in new and (keyword not in old or new[keyword] > old[keyword]):
                was = f"from {old[keyword]}" if keyword in old else "from none"
                self.report(path, f"{keyword} tightened {was} to {new[keyword]}")
        for keyword in UPPER_BOUNDS:
            if keyword in new and (keyword not in old or new[keyword] < old[keyword]):
                was = f"from {old[keyword]}" if keyword in old else "from none"
                self.report(path, f"{keyword} tightened {was} to {new[keyword]}")
        for keyword in EXACT_KEYWORDS:
            if keyword in new and old.get(keyword) != new[keyword]:
                was = _describe_value(old[keyword]) if keyword in old else "none"
                self.report(
                    path, f"{keyword} changed from {was} to {_describe_value(new[keyword])}"
                )
        if new.get("uniqueItems") is True and old.get("uniqueItems") is not True:
            self.report(path, "items now have to be unique")

    def _compare_objects(self, old: Schema, new: Schema, path: str) -> None:
        old_props: Schema = old.get("properties", {})
        new_props: Schema = new.get("properties", {})
        old_required = set(old.get("required", ()))
        new_required = set(new.get("required", ()))
        for name, old_prop in old_props.items():
            child = _join(path, name)
            if name not in new_props:
                self.report(child, "property removed")
                continue
            if name in new_required and name not in old_required:
                self.report(child, "optional property made required")
            self.compare(old_prop, new_props[name], child)
        for name in new_props:
            if name not in old_props and name in new_required:
                self.report(_join(path, name), "required property added")
        for name in sorted(new_required - set(new_props) - old_required):
            self.report(_join(path, name), "required property added")

        old_extra = old.get("additionalProperties", True)
        new_extra = new.get("additionalProperties", True)
        if new_extra is False:
            if old_extra is not False:
                self.report(path, "additional properties no longer allowed")
        elif isinstance(new_extra, dict) and old_extra is not False:
            # Values of a mapping (`dict[str, X]`): old extras must still be accepted.
            self.compare(
                old_extra if isinstance(old_extra, dict) else {},
                new_extra,
                _join(path, "*"),
            )

    def _compare_arrays(self, old: Schema, new: Schema, path: str) -> None:
        old_prefix: list[Any] = old.get("prefixItems", [])
        new_prefix: list[Any] = new.get("prefixItems", [])
        old_items = old.get("items", {})
        new_items = new.get("items", {})
        for index in range(max(len(old_prefix), len(new_prefix))):
            old_item = old_prefix[index] if index < len(old_prefix) else old_items
            new_item = new_prefix[index] if index < len(new_prefix) else new_items
            self.compare(old_item, new_item, f"{path}[{index}]")
        if old_items is not False:
            self.compare(old_items, new_items, f"{path}[]")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _constraints_only(schema: Schema) -> Schema:
    """Keywords of a union's parent that apply to every member (not annotations)."""
    annotations = {"title", "description", "default", "examples", "deprecated", "$ref-name"}
    return {k: v for k, v in schema.items() if k not in annotations}


def _is_null(schema: Schema) -> bool:
    if schema.get("type") == "null":
        return True
    return "const" in schema and schema["const"] is None and "type" not in schema


def _accepts_anything(schema: Schema) -> bool:
    meaningful = {
        k for k in schema if k not in {"title", "description", "default", "examples", "$ref-name"}
    }
    return not meaningful


def _types(schema: Schema) -> set[str]:
    """The JSON types a (single-alternative) schema admits; all of them if unconstrained."""
    declared = schema.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return set(declared)
    values = _allowed_values(schema)
    if values is not None:
        return {_json_type(v) for v in values}
    if "properties" in schema or "additionalProperties" in schema or "required" in schema:
        return {"object"}
    if "items" in schema or "prefixItems" in schema:
        return {"array"}
    return set(JSON_TYPES)


def _types_covered(old: set[str], new: set[str]) -> bool:
    """Whether every old type is still allowed.

    Deliberately strict: `integer` to `number` counts as a type change although JSON
    Schema's numbers include the integers, because consumers typed `int` (amounts in
    minor units, counts) would then be handed fractions.
    """
    return old <= new


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _allowed_values(schema: Schema) -> list[Any] | None:
    if "enum" in schema:
        values = list(schema["enum"])
        if "const" in schema:
            values = [v for v in values if v == schema["const"]]
        return values
    if "const" in schema:
        return [schema["const"]]
    return None


def _counterpart(old: Schema, candidates: list[Schema]) -> Schema | None:
    """The new union member that plays the role of `old`: same model, else same type."""
    old_name = _model_name(old)
    if old_name:
        for candidate in candidates:
            if _model_name(candidate) == old_name:
                return candidate
    old_types = _types(old)
    for candidate in candidates:
        if _types(candidate) == old_types and not _model_name(candidate):
            return candidate
    for candidate in candidates:
        if _types_covered(old_types, _types(candidate)):
            return candidate
    return None


def _model_name(schema: Schema) -> str:
    name = schema.get("title") if "properties" in schema else None
    ref = schema.get("$ref-name", "")
    return str(name or ref.rsplit("/", 1)[-1])


def _describe(variants: list[Schema]) -> str:
    """A short human name for a schema's alternatives: `integer`, `object (Money)`, ..."""
    names: list[str] = []
    for schema in variants:
        if _is_null(schema):
            names.append("null")
            continue
        types = _types(schema)
        if types == set(JSON_TYPES):
            names.append("any")
            continue
        label = "|".join(sorted(types))
        model = _model_name(schema) if "object" in types else ""
        if model:
            label = f"{label} ({model})"
        elif "format" in schema:
            label = f"{label} ({schema['format']})"
        names.append(label)
    return "|".join(dict.fromkeys(names)) or "nothing"
