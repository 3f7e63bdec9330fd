"""Scoring as it runs: inside ``milepost run`` (the demo workspace gets the reference metrics,
its accounts are scored, and the node engine acts on the findings) and alone as
``milepost scoring``."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.processes import running

WAIT_SECONDS = 30.0


def test_the_embedded_mode_scores_the_demo_workspaces_accounts(tmp_path: Path) -> None:
    # no dwell: a new risk level is announced as soon as it is assessed
    env = {"MILEPOST_DATA_DIR": str(tmp_path / "data"), "MILEPOST_SCORING_RISK_DWELL_SECONDS": "0"}
    with running("run", env, tmp_path / "run.log") as server:
        key = (tmp_path / "data" / "demo-write-key").read_text().strip()
        token = (tmp_path / "data" / "admin-token").read_text().strip()
        admin = {"Authorization": f"Bearer {token}"}
        base = f"{server.url}/api/scoring/workspaces/demo"
        definitions = httpx.get(f"{base}/definitions", headers=admin, timeout=10).json()
        assert [(v["version"], v["source_name"]) for v in definitions["items"]] == [
            (1, "metrics.yaml")
        ]
        sent = httpx.post(
            f"{server.url}/v1/batch",
            json={
                "context": {"groupId": "acme"},
                "batch": [
                    {"type": "group", "messageId": "m0", "userId": "u1", "groupId": "acme"},
                    {"type": "track", "messageId": "m1", "userId": "u1", "event": "Logged In"},
                    {
                        "type": "track",
                        "messageId": "m2",
                        "userId": "u1",
                        "event": "Order Completed",
                        "properties": {"amount": 40},
                    },
                ],
            },
            auth=(key, ""),
            timeout=10,
        )
        assert sent.status_code == 200, sent.text
        deadline = time.monotonic() + WAIT_SECONDS
        answer = httpx.get(f"{base}/accounts/acme", headers=admin, timeout=10)
        while answer.status_code == 404 and time.monotonic() < deadline:
            time.sleep(0.2)
            answer = httpx.get(f"{base}/accounts/acme", headers=admin, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["north_star"]["value"] == 1.0
        metrics = httpx.get(f"{server.url}/metrics", timeout=10).text
        assert 'milepost_scoring_records_total{outcome="scored"}' in metrics

        # the engine reads scoring's findings: an overdue invoice raises the risk level,
        # and the merchant's timeline shows it
        overdue = {
            "specversion": "1.0",
            "id": "inv-1",
            "source": "billing",
            "type": "milepost.crm.invoice.overdue",
            "data": {
                "account_id": "acme",
                "invoice_id": "i-1",
                "amount": "120",
                "currency": "EUR",
                "due_on": "2026-01-01",
            },
        }
        crm = httpx.post(
            f"{server.url}/v1/crm/events",
            json=overdue,
            headers={"Content-Type": "application/cloudevents+json"},
            auth=(key, ""),
            timeout=10,
        )
        assert crm.status_code == 200, crm.text
        timeline = f"{server.url}/api/engine/workspaces/demo/accounts/acme/timeline"
        kinds: list[str] = []
        deadline = time.monotonic() + WAIT_SECONDS
        while "risk_changed" not in kinds and time.monotonic() < deadline:
            time.sleep(0.2)
            answer = httpx.get(timeline, params={"limit": 200}, headers=admin, timeout=10)
            kinds = [item["kind"] for item in answer.json()["items"]]
        assert "risk_changed" in kinds


def test_milepost_scoring_runs_the_service_alone(tmp_path: Path) -> None:
    token = "a-scoring-admin-token-from-a-secret"
    env = {"MILEPOST_DATA_DIR": str(tmp_path / "data"), "MILEPOST_SCORING_ADMIN_TOKEN": token}
    with running("scoring", env, tmp_path / "scoring.log") as server:
        docs = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
        assert "/api/scoring/workspaces/{workspace}/accounts/{account_id}" in docs["paths"]
        portfolio = f"{server.url}/api/scoring/workspaces/x/portfolio"
        assert httpx.get(portfolio).status_code == 401
        assert httpx.get(portfolio, headers={"Authorization": f"Bearer {token}"}).status_code == 404
