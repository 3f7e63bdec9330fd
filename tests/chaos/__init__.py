"""The fault suite: Milepost's services as processes on real Kafka and PostgreSQL, under a
seeded open-loop load, disturbed (SIGKILLs, consumer-group churn, broker and PostgreSQL
restarts, a flaky webhook receiver, poison records, a burst), each run's triggers and
deliveries compared with an undisturbed run of the same workload.

``make chaos`` / ``python -m tests.chaos --help`` runs it in full; ``test_scenarios.py``
runs a few scenarios at a small scale in ``make test``. Modules: ``workload`` (what is
sent), ``load`` (how), ``system`` (the processes and servers), ``scenarios`` (the faults),
``outputs`` (collect and compare), ``runner`` (one scenario end to end, the table).
"""
