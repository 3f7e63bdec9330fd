"""A workspace's metric definitions: the file format, and its compiled form."""

from services.scoring.definitions.compiled import (
    MetricDefinition,
    MetricDefinitions,
    MetricEvent,
    Window,
    compile_metrics,
    load_metrics,
)
from services.scoring.definitions.schemas import MetricKind, MetricsFile

__all__ = [
    "MetricDefinition",
    "MetricDefinitions",
    "MetricEvent",
    "MetricKind",
    "MetricsFile",
    "Window",
    "compile_metrics",
    "load_metrics",
]
