"""The planner: matching, roles to contacts with fallbacks, channels with bounce fallback,
consent, locales, timing, template errors and tasks; budgets applied last."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from services.messaging.contacts.directory import Contact
from services.messaging.playbooks.files import Match, PublishedPlaybook, Step
from services.messaging.playbooks.service import read_playbook
from services.messaging.policies.budgets import Load, Pressure, priority_of
from services.messaging.processing.planning import (
    Plans,
    Policies,
    context_for,
    matches,
    plan_trigger,
    reach,
    recipients,
    trigger_reasons,
    with_budget,
)
from services.messaging.templates.limits import TemplateLimits
from services.messaging.templates.rendering import SAMPLE_CONTEXT, render_text
from tests.services.messaging.support import (
    POLICIES,
    T0,
    WORKSPACE,
    owner,
    person,
    reference_playbook,
    trigger,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
PLATFORM = reference_playbook("platform-merchant")


def plan(contacts: list[Contact], **changes: object) -> Plans:
    return plan_trigger(
        trigger(**changes),  # type: ignore[arg-type]
        [PLATFORM],
        contacts,
        policies=POLICIES,
        now=T0,
        unsubscribe_url=lambda contact, category: f"https://u/{contact.contact_id}/{category}",
    )


def test_a_rule_matches_on_every_list_it_sets() -> None:
    overdue = trigger()
    assert matches(Match(), overdue)
    assert matches(Match(kinds=["node_overdue"], nodes=["complete_profile"]), overdue)  # type: ignore[list-item]
    assert not matches(Match(paths=["saas-account"]), overdue)
    tier = trigger("tier_changed", node=None, payload={"to": "L4"})
    assert matches(Match(tiers=["L4", "L5"]), tier)
    assert not matches(Match(tiers=["L1"]), tier)
    risk = trigger("risk_changed", node=None, payload={"to": "high"})
    assert matches(Match(risk_levels=["high"]), risk)  # type: ignore[list-item]
    assert not matches(Match(risk_levels=["high"]), trigger())  # type: ignore[list-item]
    escalation = trigger("escalation", payload={"action": "task"})
    assert matches(Match(actions=["task"]), escalation)
    assert not matches(Match(actions=["nudge"]), escalation)


def test_the_trigger_roles_reach_their_holders_and_owners_only_as_owners() -> None:
    step = Step(id="s", channels=["email"], template="t")
    admin, boss, csm = person("a1", "admin"), person("b1", "decision_maker"), owner()
    found = recipients(step, trigger(roles=("admin", "account_owner")), [admin, boss, csm])
    assert [(r.role, r.contact.contact_id, r.fallback_from) for r in found] == [
        ("admin", "a1", None),
        ("account_owner", "owner:csm@milepost.example", None),
    ]


def test_no_admin_falls_back_to_the_decision_maker_and_a_person_gets_a_step_once() -> None:
    step = Step.model_validate(
        {
            "id": "s",
            "to": ["admin", "influencer"],
            "fallback": ["decision_maker"],
            "channels": ["email"],
            "template": "t",
        }
    )
    boss = person("b1", "decision_maker")
    found = recipients(step, trigger(), [boss, person("u1", "end_user")])
    assert [(r.role, r.contact.contact_id, r.fallback_from) for r in found] == [
        ("decision_maker", "b1", "admin")
    ]


def test_a_bounced_email_falls_back_to_the_next_channel() -> None:
    contact = person("a1", "admin", chat_app_ids={"dingtalk": "dd-1"})
    assert reach(["email", "dingtalk"], contact) == (
        "email",
        {"email": "a1@acme.example"},
    )
    bounced = replace(contact, bounced=frozenset({"email"}))
    assert reach(["email", "dingtalk"], bounced) == ("dingtalk", {"user_id": "dd-1"})
    assert reach(["email"], bounced) is None


def test_a_webhook_reaches_everyone_at_the_steps_url_or_the_configured_one() -> None:
    nobody = person("a1", "admin", email=None)
    assert reach(["email", "webhook"], nobody, url="https://h.example/x") == (
        "webhook",
        {"url": "https://h.example/x"},
    )
    assert reach(["webhook"], nobody) == ("webhook", {})


def test_a_webhook_step_plans_a_delivery_to_its_url() -> None:
    webhook = read_playbook(
        "hooks.yaml",
        """\
id: hooks
name: Hooks
rules:
  - id: overdue
    steps:
      - {id: push, channels: [webhook], url: "https://h.example/x", template: note}
templates:
  note: {body: {en: "{{ trigger.reason }}"}}
""",
    )
    plans = plan_trigger(
        trigger(),
        [PublishedPlaybook(WORKSPACE, "hooks", 1, webhook)],
        [person("a1", "admin")],
        policies=POLICIES,
        now=T0,
        unsubscribe_url=lambda contact, category: None,
    )
    [message] = plans.messages
    assert (message.status, message.channel, message.target, message.body) == (
        "queued",
        "webhook",
        {"url": "https://h.example/x"},
        "complete_profile: overdue",
    )


def test_an_overdue_node_reminds_the_admin_in_their_locale() -> None:
    admin = person("a1", "admin", name="李伟", locale="zh-CN", timezone="Asia/Shanghai")
    plans = plan([admin])
    [message] = plans.messages
    assert (message.status, message.channel, message.locale, message.role) == (
        "queued",
        "email",
        "zh-CN",
        "admin",
    )
    assert message.step_id == "platform-merchant-outreach/overdue_reminder"
    assert message.subject == "提醒：「complete_profile」已逾期"  # noqa: RUF001 (Chinese punctuation)
    assert message.body.startswith("李伟，acme 的「complete_profile」已逾期。")  # noqa: RUF001 (Chinese punctuation)
    assert message.not_before == T0
    assert plans.tasks == []


def test_quiet_hours_defer_in_the_contacts_timezone() -> None:
    late = T0 + timedelta(hours=13)  # 23:00 in Shanghai
    admin = person("a1", "admin", timezone="Asia/Shanghai")
    [message] = plan_trigger(
        trigger(at=late),
        [PLATFORM],
        [admin],
        policies=POLICIES,
        now=late,
        unsubscribe_url=lambda _c, _k: None,
    ).messages
    assert message.status == "deferred"
    assert message.not_before == datetime(2026, 3, 3, 9, tzinfo=SHANGHAI)  # window opens at 09:00
    assert message.reason is not None
    assert "quiet hours" in message.reason


def test_an_opt_out_suppresses_with_the_reason_and_nobody_reachable_too() -> None:
    opted_out = person("a1", "admin", consent={"onboarding": False})
    [message] = plan([opted_out]).messages
    assert (message.status, message.reason) == (
        "suppressed",
        "consent: the contact opted out of onboarding",
    )
    unreachable = person("a2", "admin", email=None)
    [message] = plan([unreachable]).messages
    assert message.status == "suppressed"
    assert message.reason == "no reachable channel (tried email, dingtalk, feishu, wecom)"


def plan_file(
    playbook_id: str, source: str, contacts: list[Contact], policies: Policies = POLICIES
) -> Plans:
    """The plans of a trigger with the playbook ``source`` alone published."""
    published = PublishedPlaybook(
        WORKSPACE, playbook_id, 1, read_playbook(f"{playbook_id}.yaml", source)
    )
    return plan_trigger(
        trigger(),
        [published],
        contacts,
        policies=policies,
        now=T0,
        unsubscribe_url=lambda _c, _k: None,
    )


def test_a_template_error_fails_that_message_only() -> None:
    source = (
        "id: broken\nname: Broken\nrules:\n  - id: r\n    steps:\n"
        "      - {id: bad, channels: [email], template: bad}\n"
        "      - {id: good, channels: [email], template: good}\n"
        "templates:\n  bad: {body: {en: '{{ account.missing }}'}}\n  good: {body: {en: 'ok'}}\n"
    )
    plans = plan_file("broken", source, [person("a1", "admin")])
    assert [(m.step_id, m.status) for m in plans.messages] == [
        ("broken/bad", "failed"),
        ("broken/good", "queued"),
    ]
    assert "template bad: UndefinedError" in (plans.messages[0].reason or "")


def test_the_policies_template_limits_fail_a_message_or_task_naming_the_limit() -> None:
    source = (
        "id: costly\nname: Costly\nrules:\n  - id: r\n    steps:\n"
        "      - {id: big, channels: [email], template: big}\n"
        "      - {id: fine, channels: [email], template: fine}\n"
        "      - {id: todo, task: {title: '{{ 2 ** 300 }}', due: P1D}}\n"
        "templates:\n  big: {body: {en: '{{ account.id * 20 }}'}}\n  fine: {body: {en: 'ok'}}\n"
    )
    limits = TemplateLimits(output_chars=50, integer_bits=256)
    policies = replace(POLICIES, template_limits=limits)
    plans = plan_file("costly", source, [person("a1", "admin"), owner()], policies)
    assert [(m.step_id, m.status) for m in plans.messages] == [
        ("costly/big", "failed"),
        ("costly/fine", "queued"),
    ]
    assert "template big: over the template output limit" in (plans.messages[0].reason or "")
    [task] = plans.tasks
    assert "over the template number limit" in (task.failure or "")


def test_an_escalation_task_goes_to_the_account_owner_with_due_date_and_escalation() -> None:
    plans = plan(
        [person("a1", "admin"), owner()],
        kind="escalation",
        roles=("account_owner",),
        payload={"action": "task", "level": 1},
    )
    assert plans.messages == []
    [task] = plans.tasks
    assert task.owner is not None
    assert task.owner.contact_id == "owner:csm@milepost.example"
    assert task.title == "complete_profile: overdue (acme)"
    assert (task.due_at, task.escalate_at) == (T0 + timedelta(days=2), T0 + timedelta(days=4))
    assert task.priority == "high"


def test_a_task_without_an_owner_on_file_is_still_planned_unassigned() -> None:
    [task] = plan([], kind="escalation", roles=("account_owner",), payload={"action": "task"}).tasks
    assert task.owner is None


def test_the_unsubscribe_link_reaches_the_template_and_an_emails_target() -> None:
    [message] = plan_trigger(
        trigger("stage_entered", stage="settle_in", node=None),
        [PLATFORM],
        [person("a1", "admin")],
        policies=POLICIES,
        now=T0,
        unsubscribe_url=lambda contact, category: f"https://u/{contact.contact_id}/{category}",
    ).messages
    assert "https://u/a1/onboarding" in message.body
    assert message.target["unsubscribe_url"] == "https://u/a1/onboarding"
    in_app = plan_trigger(
        trigger("stage_entered", stage="settle_in", node=None),
        [PLATFORM],
        [person("a2", "admin", email=None)],
        policies=POLICIES,
        now=T0,
        unsubscribe_url=lambda contact, category: f"https://u/{contact.contact_id}/{category}",
    ).messages[0]
    assert (in_app.channel, dict(in_app.target)) == ("in_app", {"user_id": "a2"})


def test_budgets_suppress_a_tip_before_a_renewal_risk_message() -> None:
    risk = plan_trigger(
        trigger("risk_changed", node=None, roles=("decision_maker",), payload={"to": "high"}),
        [PLATFORM],
        [person("b1", "decision_maker")],
        policies=POLICIES,
        now=T0,
        unsubscribe_url=lambda _c, _k: None,
    ).messages[0]
    tip = plan(
        [person("e1", "end_user")],
        kind="node_entered",
        node="first_order",
        roles=("admin", "end_user"),
    ).messages[0]
    assert (priority_of(risk.priority), priority_of(tip.priority)) == ("high", "low")
    nearly_full = Pressure(contact=Load(2, 2), account_role=Load(2, 2))
    assert with_budget(risk, nearly_full, POLICIES.budgets).status == "queued"
    suppressed = with_budget(tip, nearly_full, POLICIES.budgets)
    assert suppressed.status == "suppressed"
    assert suppressed.reason is not None
    assert suppressed.reason.startswith("budget:")


def test_a_risk_trigger_s_reasons_reach_templates_and_task_descriptions() -> None:
    """`reasons` (each raised signal's sentence and figures) is a template name; another
    trigger has none."""
    reason = SAMPLE_CONTEXT["reasons"][0]
    risk = trigger(
        "risk_changed",
        node=None,
        roles=("decision_maker",),
        payload={"to": "high", "reasons": [reason]},
        reason="risk level medium -> high",
    )
    source = (
        "{% for r in reasons %}{{ r.signal }}: {{ r.figures.rows_7d }} rows; "
        "{{ r.sentence }}{% endfor %}"
    )
    assert render_text(source, context_for(risk, None, None)) == (
        f"data_export: 40000 rows; {reason['sentence']}"
    )
    assert context_for(trigger(), None, None)["reasons"] == []
    assert trigger_reasons(trigger(payload={"reasons": "not a list"})) == []
    (task,) = plan_trigger(
        risk, [PLATFORM], [owner()], policies=POLICIES, now=T0, unsubscribe_url=lambda *_: None
    ).tasks
    assert task.description == f"risk level medium -> high\n- {reason['sentence']}"
    assert task.cooldown == timedelta(days=7)
    assert render_text(source, SAMPLE_CONTEXT).startswith("data_export: 40000 rows; ")
