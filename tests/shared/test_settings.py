"""The settings every service shares."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from shared.settings import RuntimeSettings


def test_the_data_folder_is_made_private(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        made = RuntimeSettings(data_dir=tmp_path / "new").private_data_dir()
        existing = tmp_path / "old"
        existing.mkdir(mode=0o755)
        RuntimeSettings(data_dir=existing).private_data_dir()
    finally:
        os.umask(previous)
    assert made == tmp_path / "new"
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    assert stat.S_IMODE(existing.stat().st_mode) == 0o700
