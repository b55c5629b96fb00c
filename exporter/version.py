"""The version of the installed wardops distribution (setup.cfg `[metadata] version`)."""

from __future__ import annotations

import configparser
import importlib.metadata
from pathlib import Path

DISTRIBUTION = "wardops"


def package_version() -> str:
    """From the installed package's metadata; in a source tree that is not installed, from its
    setup.cfg; "0+unknown" if neither exists."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        cfg = configparser.ConfigParser()
        cfg.read(Path(__file__).resolve().parents[1] / "setup.cfg", encoding="utf-8")
        return cfg.get("metadata", "version", fallback="0+unknown")


__version__ = package_version()
