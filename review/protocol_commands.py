"""`review protocol check | render | schema | upgrade`: the protocol's own commands,
registered by `review.cli`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from review.commands import EXIT_DATA, EXIT_OK, shown, workspace_of
from review.fileio import write_atomically
from review.protocol_format import SCHEMA_FILE


def cmd_protocol_render(args: argparse.Namespace) -> int:
    from review.protocol_document import render_protocol_markdown

    workspace = workspace_of(args)
    text = render_protocol_markdown(workspace.protocol, workspace.protocol_path.name)
    write_atomically(workspace.protocol_document_path, text)
    print(f"wrote {shown(workspace.protocol_document_path)}")
    return EXIT_OK


def cmd_protocol_check(args: argparse.Namespace) -> int:
    from review.protocol import protocol_schema_text
    from review.protocol_document import render_protocol_markdown

    workspace = workspace_of(args)
    protocol = workspace.protocol
    stale = []
    document = workspace.protocol_document_path
    expected = render_protocol_markdown(protocol, workspace.protocol_path.name)
    if not document.exists() or document.read_text(encoding="utf-8") != expected:
        stale.append(f"{shown(document)}: out of date with {shown(workspace.protocol_path)}; "
                     "run 'review protocol render'")
    schema = workspace.protocol_path.parent / SCHEMA_FILE
    if schema.exists() and schema.read_text(encoding="utf-8") != protocol_schema_text():
        stale.append(f"{shown(schema)}: not the schema of this version of the toolkit; run "
                     f"'review protocol schema --out {shown(schema)}'")
    if args.json:
        print(json.dumps({"protocol": shown(workspace.protocol_path), "id": protocol.id,
                          "version": protocol.version, "format": protocol.protocol_format,
                          "notes": list(protocol.notes), "stale": stale}, indent=2))
    elif protocol.notes or stale:
        print("\n".join([*(f"note: {note}" for note in protocol.notes), *stale]))
    if stale:
        return EXIT_DATA
    if not args.json:
        print(f"{shown(workspace.protocol_path)}: valid protocol '{protocol.id}' version "
              f"{protocol.version}; {shown(document)} agrees")
    return EXIT_OK


def cmd_protocol_schema(args: argparse.Namespace) -> int:
    from review.protocol import protocol_schema, protocol_schema_text

    if args.out is None:
        print(json.dumps(protocol_schema(), indent=2, ensure_ascii=False))
        return EXIT_OK
    write_atomically(Path(args.out), protocol_schema_text())
    print(f"wrote {shown(args.out)}")
    return EXIT_OK


def cmd_protocol_upgrade(args: argparse.Namespace) -> int:
    from review.protocol import load_protocol, write_protocol_schema
    from review.protocol_format import upgrade_file

    workspace = workspace_of(args)
    # A protocol that does not validate is not rewritten: its errors come first.
    load_protocol(workspace.protocol_path)
    done = upgrade_file(workspace.protocol_path)
    load_protocol(workspace.protocol_path)
    where = shown(workspace.protocol_path)
    lines = [f"{where}: {change}" for change in done] or [f"{where}: already in the current "
                                                          "format"]
    lines.append(f"wrote {shown(write_protocol_schema(workspace.protocol_path))}")
    print("\n".join(lines))
    return EXIT_OK


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Add `protocol` and its actions to `commands`."""
    protocol = commands.add_parser(
        "protocol", help="check, render, upgrade the protocol or print its schema",
        description="Validate the protocol, keep its human-readable Markdown in step with it, "
                    "publish its JSON Schema for editors and upgrade an older file.")
    actions = protocol.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = actions.add_parser(
        "check", help="validate the protocol and check that its Markdown is current",
        description="Validate the protocol YAML; exit 1 when the Markdown beside it, or the "
                    "JSON Schema beside it, is stale.",
        epilog="example: review protocol check --json")
    check.add_argument("--json", action="store_true",
                       help="the protocol's id, version, format, notes and stale files")
    check.set_defaults(handler=cmd_protocol_check)
    actions.add_parser(
        "render", help="write the human-readable protocol (Markdown) from the YAML",
        description="Write protocols/<id>.md from protocols/<id>.yaml.",
        epilog="example: review protocol render",
    ).set_defaults(handler=cmd_protocol_render)
    schema = actions.add_parser(
        "schema", help="print the protocol's JSON Schema (for editors and validators)",
        description="Print the JSON Schema of a protocol file, generated from the typed "
                    "protocol model. Editors with the YAML language server complete and check "
                    f"keys when the protocol's first line is '# yaml-language-server: "
                    f"$schema={SCHEMA_FILE}'.",
        epilog=f"example: review protocol schema --out protocols/{SCHEMA_FILE}")
    schema.add_argument("--out", metavar="FILE", help="write the schema to FILE instead")
    schema.set_defaults(handler=cmd_protocol_schema)
    actions.add_parser(
        "upgrade", help="rewrite a protocol of an older format in the current one",
        description="Rewrite the protocol file in the current protocol format, changing only "
                    "the lines the format needs (comments, quoting and order are kept), point "
                    "it to the JSON Schema and write the schema beside it.",
        epilog="example: review protocol upgrade",
    ).set_defaults(handler=cmd_protocol_upgrade)
