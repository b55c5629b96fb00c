"""YAML import (atomic, every error with file:line) and export (loads back to the same inventory)."""

from __future__ import annotations

from pathlib import Path

import yaml

from inventory.errors import InventoryError, Problem
from inventory.loader import loads_inventory
from inventory.located import read_yaml
from inventory.schema import build_inventory
from inventory.service.db import make_engine, migrate
from inventory.service.store import ChangeRejected, InventoryStore, Origin, Snapshot

_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def open_store(url: str) -> InventoryStore:
    engine = make_engine(url)
    migrate(engine)
    return InventoryStore(engine)


def import_file(store: InventoryStore, path: str | Path) -> Snapshot:
    """Replace the stored inventory with the file's, or raise InventoryError (file:line) and change nothing.

    The file's plain data is stored as is (explicit fields, rules, profiles, windows), so rules keep
    applying to devices that do not set a field, exactly as in the file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError([Problem(str(path), f"cannot read inventory: {exc}")]) from None
    data, locate = read_yaml(text, str(path))
    build_inventory(data, locate, str(path))  # the loader's own errors, with file:line
    data = data or {}
    if data.get("topology"):
        # The store has no table for it yet: refuse rather than drop it and export less than imported.
        raise InventoryError([Problem(locate(("topology",)), "not stored by the inventory "
                                      "service yet; keep it in the YAML inventory file", ("topology",))])
    try:
        snap, _ = store.write(lambda draft: draft.replace_all(data, Origin(None, None, "$")))
    except ChangeRejected as exc:  # not expected after the check above; report it the same way
        raise InventoryError(exc.problems) from None
    return snap


def export_text(store: InventoryStore, resolved: bool = False, header: str = "") -> str:
    """The stored inventory as YAML in the file format; re-loaded and compared before it is returned.

    Default: explicit fields as stored (classify rules still apply on load). `resolved`: every
    device with its resolved fields (inventory.dump.dump_yaml), no rule needed to read it.
    """
    snap = store.snapshot()
    if snap.inventory is None:
        raise InventoryError(snap.problems)
    if resolved:
        from inventory.dump import dump_yaml

        body = dump_yaml(snap.inventory)
    else:
        body = yaml.dump(snap.data(), Dumper=_Dumper, sort_keys=True, allow_unicode=True,
                         default_flow_style=False, width=120)
    text = header + body
    again = loads_inventory(text, "<export>")
    if again != snap.inventory:
        raise RuntimeError("export does not load back to the stored inventory (bug)")
    return text


__all__ = ["export_text", "import_file", "open_store"]
