"""``milepost scoring train``, ``predict`` and ``demo-events``: the optional churn model.

scikit-learn (the ``ml`` extra) is imported only when ``train`` fits, so every other
command works without it.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

import services.scoring
from services.scoring.errors import ScoringError
from services.scoring.model.backtest import DEFAULT_TEST_FRACTION
from services.scoring.model.predictor import ModelKind
from services.scoring.model.synthetic import DEFAULT_ACCOUNTS, DEFAULT_DAYS
from services.scoring.model.training import DEFAULT_SEED, ChurnModel, TrainingOptions

if TYPE_CHECKING:
    from services.scoring.definitions import MetricDefinitions
    from services.scoring.model.features import Dataset
    from services.scoring.model.history import History

REFERENCE_METRICS = Path(services.scoring.__file__).parent / "reference" / "metrics.yaml"

app = typer.Typer(
    help="The optional learned churn model (the rule-based health score stays the default).",
    no_args_is_help=True,
)

MetricsOption = Annotated[
    Path,
    typer.Option(
        "--metrics",
        help="The workspace's metric definitions (YAML); the features are its metrics.",
        show_default="services/scoring/reference/metrics.yaml",
    ),
]


@app.command("train")
def train_command(
    events: Annotated[
        Path | None,
        typer.Option(help="JSONL file of event envelopes, one per line as on milepost.events."),
    ] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Train on the seeded synthetic history instead.")
    ] = False,
    metrics: MetricsOption = REFERENCE_METRICS,
    horizon: Annotated[
        str,
        typer.Option(help="Label: churned within this long after a snapshot (ISO 8601, days)."),
    ] = "P90D",
    model: Annotated[
        ModelKind,
        typer.Option("--model", help="logistic: logistic regression; gbm: gradient-boosted trees."),
    ] = ModelKind.LOGISTIC,
    split_at: Annotated[
        datetime | None,
        typer.Option(help="Cut date (UTC if no zone): train before it, test from it."),
    ] = None,
    test_fraction: Annotated[
        float,
        typer.Option(
            min=0.05, max=0.95, help="Without --split-at: the share of snapshots to test on."
        ),
    ] = DEFAULT_TEST_FRACTION,
    seed: Annotated[
        int, typer.Option(help="Seeds the fit (and, with --demo, the synthetic history).")
    ] = DEFAULT_SEED,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Save the model to this JSON file.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Fit a churn model on labelled history and report its backtest.

    Every account is snapshotted on the first day of each month: its metrics (folded from
    its events before that day, as the scoring service keeps them) are the features; the
    label is whether a milepost.crm.subscription.cancelled event follows within the
    horizon. The model is trained on snapshots whose horizon ended before the cut date and
    tested on those after it: AUC, Brier score and a calibration table. The saved model is
    then refitted on every labelled snapshot. Model files are JSON (both kinds: the trees
    of gbm are stored as arrays), never pickles, so they are safe to load.
    """
    if demo == (events is not None):
        raise typer.BadParameter("give either --events FILE or --demo", param_hint="--events")
    horizon_days = _days(horizon)
    definitions = _metrics(metrics)
    history = _training_history(events, seed)
    dataset = _snapshots(history, definitions, horizon_days)
    cut = None if split_at is None else int(_utc(split_at).timestamp())
    options = TrainingOptions(kind=model, split_at=cut, test_fraction=test_fraction, seed=seed)
    trained = _fit(dataset, definitions, options, history_end=history.end)
    _save_and_report(trained, out, as_json=as_json)


def _training_history(events: Path | None, seed: int) -> History:
    """The history in ``events``, or the seeded synthetic one without a file."""
    from services.scoring.model.history import history_of
    from services.scoring.model.synthetic import synthetic_history

    if events is not None:
        return _history(events)
    typer.echo(f"generating the demo history (seed {seed})", err=True)
    return history_of(synthetic_history(seed=seed))


def _snapshots(history: History, definitions: MetricDefinitions, horizon_days: int) -> Dataset:
    """The labelled monthly snapshots of every account, with a progress bar."""
    from services.scoring.model.features import build_dataset

    with typer.progressbar(
        length=len(history.accounts), label="snapshotting accounts", file=sys.stderr
    ) as bar:
        return build_dataset(history, definitions, horizon_days=horizon_days, progress=bar.update)


def _fit(
    dataset: Dataset, definitions: MetricDefinitions, options: TrainingOptions, *, history_end: int
) -> ChurnModel:
    """The backtested model refitted on every snapshot; a scoring error exits with 1."""
    from services.scoring.model.sklearn_adapter import fit_scorer
    from services.scoring.model.training import train
    from shared.clock import SystemClock

    typer.echo(
        f"fitting {options.kind.value}: before the cut, "
        f"then on all {len(dataset.snapshots)} snapshots",
        err=True,
    )
    try:
        return train(
            dataset,
            definitions,
            options,
            fit_scorer,
            trained_at=SystemClock().now(),
            history_end=history_end,
        )
    except ScoringError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc


def _save_and_report(trained: ChurnModel, out: Path | None, *, as_json: bool) -> None:
    """Saves the model to ``out`` if given, then prints the training report."""
    import orjson

    from services.scoring.model.modelfile import report_json, save_model
    from services.scoring.model.report import training_text

    if out is not None:
        save_model(trained, out)
    if as_json:
        typer.echo(orjson.dumps(report_json(trained), option=orjson.OPT_INDENT_2).decode())
    else:
        typer.echo(training_text(trained, saved_to=None if out is None else str(out)), nl=False)


@app.command("predict")
def predict_command(
    model_file: Annotated[
        Path, typer.Option("--model", help="A model file saved by `train --out`.")
    ],
    events: Annotated[
        Path, typer.Option(help="JSONL file of event envelopes holding the account's history.")
    ],
    account: Annotated[str, typer.Option(help="The account's id.")],
    metrics: MetricsOption = REFERENCE_METRICS,
    at: Annotated[
        datetime | None,
        typer.Option(help="Predict at this time (UTC if no zone); default: after the last event."),
    ] = None,
    workspace_id: Annotated[
        str | None, typer.Option(help="When the file holds several workspaces.")
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="How many features to show.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print the prediction as JSON.")] = False,
) -> None:
    """Print an account's churn probability with the features that contributed most.

    Needs the metric definitions the model was trained with (checked by digest). Each
    feature's contribution is in log-odds: for logistic regression its coefficient times
    its standardised value; for gradient boosting its share of the trees' path changes.
    """
    import orjson

    from services.scoring.model.modelfile import load_model
    from services.scoring.model.prediction import predict_account
    from services.scoring.model.report import prediction_json, prediction_text

    definitions = _metrics(metrics)
    try:
        trained = load_model(model_file)
        prediction = predict_account(
            trained,
            _history(events),
            definitions,
            account,
            at=None if at is None else int(_utc(at).timestamp()),
            workspace_id=workspace_id,
        )
    except ScoringError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    if as_json:
        document = prediction_json(trained, prediction, top=top)
        typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
    else:
        typer.echo(prediction_text(trained, prediction, top=top), nl=False)


@app.command("demo-events")
def demo_events_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="The JSONL file to write.")],
    seed: Annotated[int, typer.Option(help="The same seed writes the same events.")] = 7,
    accounts: Annotated[int, typer.Option(min=1, help="How many accounts.")] = DEFAULT_ACCOUNTS,
    days: Annotated[int, typer.Option(min=200, help="How many days of history.")] = DEFAULT_DAYS,
) -> None:
    """Write the seeded synthetic labelled history (`train --demo` uses it) as JSONL.

    Accounts that churn fade for weeks before a cancellation; retained accounts stay
    steady or grow. Use it to try `train --events` and `predict`.
    """
    from services.scoring.model.synthetic import synthetic_history

    envelopes = synthetic_history(seed=seed, accounts=accounts, days=days)
    with out.open("w", encoding="utf-8") as stream:
        for envelope in envelopes:
            stream.write(envelope.model_dump_json(exclude_none=True) + "\n")
    typer.echo(f"{len(envelopes)} events of {accounts} accounts written to {out}")


def _metrics(path: Path) -> MetricDefinitions:
    from services.scoring.definitions import load_metrics
    from shared.definitions import DefinitionError

    try:
        return load_metrics(path)
    except DefinitionError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(code=1) from exc


def _history(path: Path) -> History:
    """The accounts' histories in a JSONL file of envelopes, read with a progress bar;
    lines that are not envelopes are skipped and counted on stderr."""
    from services.scoring.model.history import history_of
    from shared.event_log import read_lines

    try:
        with path.open("rb") as stream:
            log = read_lines(stream)
    except OSError as exc:
        typer.echo(f"error: cannot read {path}: {exc.strerror or exc}", err=True)
        raise typer.Exit(code=1) from exc
    with typer.progressbar(log, length=len(log), label="reading events", file=sys.stderr) as bar:
        history = history_of(bar)
    if log.skipped_count:
        first = log.skipped[0]
        typer.echo(
            f"skipped {log.skipped_count} lines that are not event envelopes "
            f"(first: {first.where}: {first.reason})",
            err=True,
        )
    return history


def _days(horizon: str) -> int:
    from shared.durations import parse_duration

    try:
        seconds = parse_duration(horizon).total_seconds()
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--horizon") from exc
    if seconds <= 0 or seconds % 86400:
        raise typer.BadParameter(
            "must be a whole number of days, such as P90D", param_hint="--horizon"
        )
    return int(seconds // 86400)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
