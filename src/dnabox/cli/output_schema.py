"""The JSON Schema of every `--json` output (docs/json/dnabox-v1.schema.json).

Each command's document is described once here; a unit test keeps the checked-in file equal
to this output and checks that every command with --json is in it, and that the outputs and
errors it can produce offline validate against it.

Regenerate: ``python -m dnabox.cli.output_schema > docs/json/dnabox-v1.schema.json``
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from typing import Any

from dnabox.cli.envelope import SCHEMA as VERSION

Schema = dict[str, Any]


def S(**extra: Any) -> Schema:  # noqa: N802 (reads like the JSON type it stands for)
    return {"type": "string", **extra}


INT: Schema = {"type": "integer"}
N: Schema = {"type": "number"}
B: Schema = {"type": "boolean"}
NS: Schema = {"type": ["string", "null"]}


def obj(props: dict[str, Any], required: Iterable[str] | None = None, extra: bool = True) -> Schema:
    return {
        "type": "object",
        "properties": props,
        "required": list(required if required is not None else props),
        "additionalProperties": extra,
    }


def arr(items: Schema) -> Schema:
    return {"type": "array", "items": items}


reading = obj(
    {
        "name": S(),
        "site": S(),
        "tier": S(),
        "state": {"enum": ["converged", "pending", "unreachable"]},
        "error": NS,
        "roles": {"type": "object", "additionalProperties": S()},
        "drifted_files": arr(S()),
    }
)
event = obj(
    {
        "kind": S(),
        "status": {
            "enum": ["started", "ok", "changed", "skipped", "failed", "blocked", "info", "retry"]
        },
        "unit": S(),
        "site": S(),
        "box": S(),
        "message": S(),
        "data": {"type": "object"},
        "at": N,
    },
    required=["kind", "status", "at"],
)
stack_outcome = obj(
    {
        "cluster": S(),
        "stack": S(),
        "operation": {"enum": ["preview", "up", "destroy"]},
        "ok": B,
        "changes": {"type": "object", "additionalProperties": INT},
        "log": S(),
        "error": S(),
        "pid": INT,
    },
    required=["cluster", "stack", "operation", "ok", "changes", "log", "error"],
)
COMMANDS: dict[str, Schema] = {
    "inventory.validate": obj(
        {
            "ok": {"const": True},
            "file": S(),
            "valid": {"const": True},
            "sites": INT,
            "boxes": INT,
            "clusters": INT,
        }
    ),
    "inventory.show": obj(
        {
            "name": S(),
            "sites": arr({"type": "object"}),
            "boxes": arr({"type": "object"}),
            "clusters": arr({"type": "object"}),
            "overlays": arr({"type": "object"}),
        }
    ),
    "plan": obj(
        {
            "boxes": arr(
                {
                    "allOf": [
                        reading,
                        obj({"diffs": {"type": "object", "additionalProperties": S()}}),
                    ]
                }
            )
        }
    ),
    "status": obj({"boxes": arr(reading)}),
    "drift": obj(
        {
            "drifted": {
                "type": "object",
                "additionalProperties": {"type": "object", "additionalProperties": S()},
            },
            "unreachable": {"type": "object", "additionalProperties": S()},
        }
    ),
    "up": event,
    "runbook.run": {
        "oneOf": [
            event,
            obj(
                {
                    "runbook": S(),
                    "ok": B,
                    "message": S(),
                    "batches": arr({"type": "object"}),
                    "ran": {"type": "object", "additionalProperties": arr(S())},
                }
            ),
        ]
    },
    "exec": obj(
        {
            "boxes": arr(
                obj(
                    {
                        "name": S(),
                        "rc": {"type": ["integer", "null"]},
                        "seconds": N,
                        "error": NS,
                        "output": arr(S()),
                    }
                )
            )
        }
    ),
    "bootstrap": obj(
        {
            "boxes": arr(
                obj({"name": S(), "ok": INT, "changed": INT, "failed": INT, "unreachable": INT})
            ),
            "seconds": N,
        }
    ),
    "stack.config": obj(
        {"files": {"type": "object", "additionalProperties": S()}, "stale": arr(S())}
    ),
    "stack.preview": obj({"ok": B, "stacks": arr(stack_outcome)}),
    "stack.up": obj({"ok": B, "stacks": arr(stack_outcome)}),
    "stack.destroy": obj({"ok": B, "stacks": arr(stack_outcome)}),
    "runbook.list": obj({"runbooks": arr(obj({"name": S(), "summary": S()}))}),
    "lab.up": obj(
        {"fleet": S(), "started": arr(S()), "kept": arr(S()), "removed": arr(S()), "seconds": N}
    ),
    "lab.status": obj(
        {"boxes": arr(obj({"name": S(), "site": S(), "address": S(), "state": S()}))}
    ),
    "agent.status": obj({"running": B}),
    "bundle.build": obj({"directory": S(), "packages": INT, "artifacts": arr(S())}),
    "kubeconfig": obj({"cluster": S(), "path": S(), "merged_into": NS}),
    "init": obj({"directory": S(), "files": arr(S()), "todos": INT}),
    "demo": obj(
        {
            "fleet": S(),
            "ok": B,
            "seconds": N,
            "picture": S(),
            "kept": B,
            "plan": arr({"type": "object"}),
            "runs": arr({"type": "object"}),
            "proofs": arr({"type": "object"}),
            "status": arr({"type": "object"}),
        },
        required=["fleet", "ok", "seconds", "picture", "plan", "runs", "proofs", "status"],
    ),
    "dna.status": obj(
        {
            "ponds": arr({"type": "object"}),
            "lake": {"type": "object"},
            "catalogue": {},
            "models": arr({"type": "object"}),
        },
        required=["ponds", "lake", "models"],
    ),
    "dna.publish": obj({"box": S(), "dataset": S(), "published": INT, "duplicates": INT}),
    "dna.train": obj(
        {"model": S(), "box": S(), "version": INT, "metric": {"type": "object"},
         "dataset_range": {"type": "object"}, "trained_at": N},
        required=["model", "box", "version", "metric", "dataset_range", "trained_at"],
    ),
    "dna.predict": obj(
        {"model": S(), "site": S(), "box": S(), "features": {"type": "object"},
         "prediction": N, "version": INT, "seconds": N},
        required=["model", "site", "box", "prediction", "version"],
    ),
    "lab.partition": obj(
        {"site": S(), "partitioned": B, "changed": B, "pairs": arr(arr(S()))},
        required=["site", "changed", "pairs"],
    ),
    "lab.heal": obj(
        {"site": S(), "partitioned": B, "changed": B, "pairs": arr(arr(S()))},
        required=["site", "changed", "pairs"],
    ),
    "unlock": obj({"freed": arr(S())}),
    "locations": obj(
        {"project": S(), "assets": S(), "state": S(), "fleet_state": NS, "on_box_state": S()}
    ),
}
error = obj(
    {
        "ok": {"const": False},
        "error": obj(
            {
                "message": S(),
                "hint": NS,
                "exit_code": INT,
                "problems": arr(obj({"file": S(), "line": INT, "field": S(), "message": S()})),
            }
        ),
    }
)
SCHEMA: Schema = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://github.com/dnabox/dnabox/docs/json/dnabox-v1.schema.json",
    "title": "dnabox --json output, version dnabox/v1",
    "description": (
        "Every --json document (one per line for event streams) carries schema and "
        "command; an error under --json is the error shape whatever the command. "
        "Additive changes keep dnabox/v1."
    ),
    "type": "object",
    "required": ["schema", "command"],
    "properties": {"schema": {"const": VERSION}, "command": {"enum": sorted(COMMANDS)}},
    "$defs": {"error": error, **{name: spec for name, spec in COMMANDS.items()}},
    "if": {"properties": {"ok": {"const": False}}, "required": ["ok", "error"]},
    "then": {"$ref": "#/$defs/error"},
    "else": {
        "allOf": [
            {
                "if": {"properties": {"command": {"const": name}}},
                "then": {"$ref": f"#/$defs/{name}"},
            }
            for name in sorted(COMMANDS)
        ]
    },
}


def generate() -> str:
    return json.dumps(SCHEMA, indent=2) + "\n"


if __name__ == "__main__":
    sys.stdout.write(generate())
