"""Entry points: load an inventory from a YAML file, YAML text, or plain (JSON) data."""

from __future__ import annotations

from pathlib import Path

from inventory.errors import InventoryError, Problem
from inventory.located import read_yaml
from inventory.model import Inventory
from inventory.schema import build_inventory, json_locator


def load_inventory(path: str | Path, known_sites: tuple[str, ...] | None = None) -> Inventory:
    """Load and validate a YAML inventory file; raise InventoryError listing every problem.
    `known_sites`: check `sites:` names against the generator settings' probe sites."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InventoryError([Problem(str(path), f"cannot read inventory: {exc}")]) from None
    return loads_inventory(text, str(path), known_sites)


def loads_inventory(text: str, source: str = "<inventory>", known_sites: tuple[str, ...] | None = None) -> Inventory:
    data, locate = read_yaml(text, source)
    return build_inventory(data, locate, source, known_sites)


def inventory_from_data(data: object, source: str = "$") -> Inventory:
    """Validate already-parsed data (e.g. a JSON request body); locations are JSON paths."""
    return build_inventory(data, json_locator, source)
