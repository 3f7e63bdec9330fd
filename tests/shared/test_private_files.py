"""A private file is the owner's alone from its first byte, and replaced whole."""

from __future__ import annotations

from pathlib import Path

from shared.private_files import write_private


def test_a_private_file_is_0600_and_replaced_whole(tmp_path: Path) -> None:
    kept = tmp_path / "admin-token"
    write_private(kept, "first")
    assert kept.read_text() == "first\n"
    assert kept.stat().st_mode & 0o777 == 0o600
    kept.chmod(0o644)  # loosened by hand: the next write makes it private again
    write_private(kept, "second")
    assert kept.read_text() == "second\n"
    assert kept.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["admin-token"]  # no draft left behind
