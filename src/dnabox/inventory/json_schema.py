"""The JSON Schema of a fleet file, generated from the model (docs/inventory.schema.json).

Editors that speak the yaml-language-server protocol validate and complete fleet files
from it: `dnabox init` writes a copy into the fleet repo and points its inventory at it
with ``# yaml-language-server: $schema=...``. A unit test keeps the checked-in copy equal
to this output. The model's own checks (addresses inside subnets, names that exist, ...)
go beyond what a schema can say: `dnabox inventory validate` remains the authority.

Regenerate: ``python -m dnabox.inventory.json_schema > docs/inventory.schema.json``
"""

from __future__ import annotations

import json
import sys
from typing import Any

from dnabox.inventory.model import Fleet

SCHEMA_ID = "https://dnabox.dev/schema/inventory.schema.json"


def schema() -> dict[str, Any]:
    generated = Fleet.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID,
            **generated, "title": "dnabox fleet (inventory)"}


def generate() -> str:
    return json.dumps(schema(), indent=2, sort_keys=False) + "\n"


def main() -> None:
    sys.stdout.write(generate())


if __name__ == "__main__":
    main()
