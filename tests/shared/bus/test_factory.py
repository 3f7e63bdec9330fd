"""The bus the settings name: by default embedded mode's durable bus in the data folder."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from shared.bus.durable import DurableBus, Retention
from shared.bus.factory import create_bus
from shared.bus.memory import InMemoryBus
from shared.settings import RuntimeSettings


def test_the_default_bus_is_a_durable_file_in_the_data_folder(tmp_path: Path) -> None:
    settings = RuntimeSettings(
        data_dir=tmp_path, embedded_bus_retention=timedelta(days=2), embedded_bus_max_records=9
    )
    bus = create_bus(settings)
    assert isinstance(bus, DurableBus)
    assert bus.file.path == tmp_path / "bus.db"
    assert bus.file.retention == Retention(max_age=timedelta(days=2), max_records=9)


def test_the_memory_bus_is_still_there_for_tests(tmp_path: Path) -> None:
    assert isinstance(create_bus(RuntimeSettings(data_dir=tmp_path, bus="memory")), InMemoryBus)
