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


def source_revision(root: Path | None = None) -> str:
    """The git commit of the source tree the package runs from (an editable install or a checkout),
    "unknown" for an installed copy without its .git or when git is missing. Asked once per process."""
    import subprocess

    root = root or Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():  # a worktree has a .git file, a clone a directory
        return "unknown"
    try:
        run = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=False)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    rev = run.stdout.strip()
    return rev if run.returncode == 0 and rev and all(c in "0123456789abcdef" for c in rev) else "unknown"
