"""Generate the committed event contracts, or check that they are current.

    python tools/gen_contracts.py            # write libs/schemas/jsonschema/*.json + README table
    python tools/gen_contracts.py --check    # exit 1, with a summary, if anything is stale

Writes one JSON Schema per event at its current version
(`libs/schemas/jsonschema/<event_type>.v<version>.json`) and the events table between
`<!-- events:start -->` and `<!-- events:end -->` in libs/schemas/README.md. Files of
other versions are never touched: they are the record of what was published.

A committed schema is a published contract, so regenerating refuses to overwrite one
with an incompatible schema of the *same* version (bump `schema_version` instead);
`--allow-breaking` overrides that for a version that was never released.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vitrine_schemas.compat import breaking_changes
from vitrine_schemas.export import events_table, render_all

ROOT = Path(__file__).resolve().parents[1]
SCHEMA_DIR = ROOT / "libs" / "schemas" / "jsonschema"
README = ROOT / "libs" / "schemas" / "README.md"
TABLE_START = "<!-- events:start -->"
TABLE_END = "<!-- events:end -->"
DIFF_LINES = 40


@dataclass
class Report:
    """What differs between the committed contracts and the code."""

    stale: list[str] = field(default_factory=list)
    breaking: list[str] = field(default_factory=list)
    diffs: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.stale and not self.breaking


def render_readme(text: str, table: str) -> str:
    """`text` with the part between the event-table markers replaced by `table`."""
    start = text.find(TABLE_START)
    end = text.find(TABLE_END)
    if start < 0 or end < start:
        raise ValueError(f"README lacks the markers {TABLE_START} ... {TABLE_END}")
    head = text[: start + len(TABLE_START)]
    return f"{head}\n{table}{text[end:]}"


def planned(schema_dir: Path = SCHEMA_DIR, readme: Path = README) -> dict[Path, str]:
    """Every file the generator owns, with the text it should have."""
    files = {schema_dir / name: text for name, text in render_all().items()}
    current = readme.read_text(encoding="utf-8") if readme.exists() else ""
    files[readme] = render_readme(current, events_table())
    return files


def _display(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def _diff(path: Path, old: str, new: str) -> str:
    lines = list(
        difflib.unified_diff(
            old.splitlines(),
            new.splitlines(),
            f"{_display(path)} (committed)",
            f"{_display(path)} (generated)",
            lineterm="",
            n=1,
        )
    )
    if len(lines) > DIFF_LINES:
        lines = [*lines[:DIFF_LINES], f"... {len(lines) - DIFF_LINES} more diff lines"]
    return "\n".join(lines)


def compare(schema_dir: Path = SCHEMA_DIR, readme: Path = README) -> Report:
    """What regenerating would change, and which changes would break a contract."""
    report = Report()
    for path, text in planned(schema_dir, readme).items():
        name = _display(path)
        if not path.exists():
            report.stale.append(f"{name}: missing")
            continue
        committed = path.read_text(encoding="utf-8")
        if committed == text:
            continue
        if path.suffix == ".json":
            try:
                problems = breaking_changes(json.loads(committed), json.loads(text))
            except (ValueError, KeyError) as error:
                problems = [f"(committed file unreadable: {error})"]
            for problem in problems:
                report.breaking.append(f"{name}: {problem}")
            changed = "BREAKING" if problems else "compatible"
            report.stale.append(f"{name}: out of date ({changed} change)")
        else:
            report.stale.append(f"{name}: events table out of date")
        report.diffs.append(_diff(path, committed, text))
    return report


def write(
    schema_dir: Path = SCHEMA_DIR, readme: Path = README, *, allow_breaking: bool = False
) -> Report:
    """Regenerate the files; with breaking changes and no `allow_breaking`, write nothing."""
    report = compare(schema_dir, readme)
    if report.breaking and not allow_breaking:
        return report
    schema_dir.mkdir(parents=True, exist_ok=True)
    for path, text in planned(schema_dir, readme).items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if anything is stale"
    )
    parser.add_argument(
        "--allow-breaking",
        action="store_true",
        help="overwrite a committed schema with an incompatible one of the same version",
    )
    parser.add_argument("--schema-dir", type=Path, default=SCHEMA_DIR, help=argparse.SUPPRESS)
    parser.add_argument("--readme", type=Path, default=README, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.check:
        report = compare(args.schema_dir, args.readme)
        if report.clean:
            print("contracts are up to date")
            return 0
        print("contracts are stale; run: python tools/gen_contracts.py")
        for line in report.stale:
            print(f"  {line}")
        if report.breaking:
            print("breaking changes within one schema version (bump schema_version instead):")
            for line in report.breaking:
                print(f"  {line}")
        for diff in report.diffs:
            print(diff)
        return 1

    report = write(args.schema_dir, args.readme, allow_breaking=args.allow_breaking)
    if report.breaking and not args.allow_breaking:
        print("refusing to overwrite published schemas with incompatible ones:", file=sys.stderr)
        for line in report.breaking:
            print(f"  {line}", file=sys.stderr)
        print(
            "bump the event's schema_version (the old file stays), or pass --allow-breaking"
            " if that version was never released",
            file=sys.stderr,
        )
        return 1
    for line in report.stale:
        print(f"regenerated {line}")
    if report.clean:
        print("contracts were already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
