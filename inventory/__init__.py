"""The device inventory: typed model, strict loader, dumper, synthetic generator (and the service)."""

from inventory.errors import InventoryError, Problem
from inventory.loader import inventory_from_data, load_inventory, loads_inventory
from inventory.model import (
    ROLES,
    ClassifyRule,
    Device,
    Inventory,
    MaintenanceWindow,
    Match,
    SnmpProfile,
)
from inventory.secrets import Secret, SecretError

__all__ = [
    "ROLES", "ClassifyRule", "Device", "Inventory", "InventoryError", "MaintenanceWindow", "Match",
    "Problem", "Secret", "SecretError", "SnmpProfile", "inventory_from_data", "load_inventory",
    "loads_inventory",
]
