"""Data-contract check for one project (an example of a team's extra check).

Usage: python check_data_contract.py CONTRACT_DIR   (run in the project directory)

Each ``CONTRACT_DIR/*.yml`` describes a table the project publishes::

    producer: deployment.batch_inference.predict:output_columns  # module:function
    input_columns: [trip_distance, pickup_zip, dropoff_zip]      # what it is called with
    columns: [trip_distance, prediction, model_id, timestamp]     # what consumers rely on

The producer is imported from the project (pure Python, no Spark) and called with the input
columns; every promised column must be in what it returns. New columns are fine; a removed or
renamed one breaks the contract. Exit 1 listing every broken promise.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import yaml


def check(contract_path: Path) -> list[str]:
    spec = yaml.safe_load(contract_path.read_text(encoding="utf-8")) or {}
    missing_keys = [k for k in ("producer", "columns") if k not in spec]
    if missing_keys:
        return [f"{contract_path}: missing key {missing_keys[0]!r}"]
    module_name, _, function_name = str(spec["producer"]).partition(":")
    try:
        producer = getattr(importlib.import_module(module_name), function_name)
        produced = list(producer(list(spec.get("input_columns") or [])))
    except Exception as exc:  # the contract's producer is gone or broken: report, do not crash
        return [f"{contract_path}: producer {spec['producer']} failed: {type(exc).__name__}: {exc}"]
    return [
        f"{contract_path}: column {column!r} is promised but {spec['producer']} no longer writes it"
        for column in spec["columns"]
        if column not in produced
    ]


def main(argv: list[str]) -> int:
    folder = Path(argv[1] if len(argv) > 1 else "contracts")
    sys.path.insert(0, str(Path.cwd()))  # the project's own modules, as its notebooks see them
    problems = [p for path in sorted(folder.glob("*.yml")) for p in check(path)]
    for problem in problems:
        print(problem)
    print(f"{len(problems)} broken promise(s)" if problems else "data contracts hold")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
