"""The console in a real browser (Debian's chromium, driven by Playwright) against a seeded
``milepost run --sandbox``: sign in, every view, path -> node -> account -> delivery, a path
edited with a mistake shown at its line then published, a draft simulated with its outreach,
both languages, the keyboard, and axe-core's accessibility rules. A screenshot of each view goes to .cache/console-screenshots/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, expect, sync_playwright

from services.sandbox import CLOCK_FILE
from tests.availability import unavailable
from tests.processes import start_server, stop_server
from tests.services.console.seeding import seed

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[3] / ".cache" / "console-screenshots"
PATH = "#/w/demo/path/platform-merchant"


@dataclass(frozen=True)
class Instance:
    url: str
    token: str


@pytest.fixture(scope="module")
def instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Instance]:
    """A sandbox ``milepost run`` with the seeded merchants, three days on."""
    root = tmp_path_factory.mktemp("console")
    data = root / "data"
    data.mkdir()
    (data / CLOCK_FILE).write_text(f"{_seconds_until_evening()}\n")
    env = {
        "MILEPOST_DATA_DIR": str(data),
        "MILEPOST_ENGINE_TIMER_INTERVAL_MS": "200",
        "MILEPOST_MESSAGING_BUDGET_PER_CONTACT": "10",
    }
    server = start_server("run", env, root / "run.log")
    try:
        token = (data / "admin-token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as admin:
            seed(admin, (data / "demo-write-key").read_text().strip())
        yield Instance(server.url, token)
    finally:
        stop_server(server)


def _seconds_until_evening() -> int:
    """The sandbox's start: the next 22:00 UTC, so the seeded outreach meets the quiet hours
    (21:00 to 08:00 in the contacts' default UTC) and is deferred, whatever the time of day."""
    now = datetime.now(UTC)
    evening = now.replace(hour=22, minute=0, second=0, microsecond=0)
    return int(((evening if evening > now else evening + timedelta(days=1)) - now).total_seconds())


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing: `make tools` installs Debian's chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def open_page(browser: Browser, instance: Instance, locale: str = "en-US") -> Iterator[Page]:
    context = browser.new_context(
        base_url=instance.url, locale=locale, viewport={"width": 1400, "height": 1000}
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, errors


@pytest.fixture
def page(browser: Browser, instance: Instance) -> Iterator[Page]:
    """A signed-in page of a fresh browser context (English)."""
    for opened in open_page(browser, instance):
        sign_in(opened, instance.token)
        yield opened


def sign_in(page: Page, token: str) -> None:
    page.goto("/")
    page.get_by_label("Admin token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Views")).to_be_visible()


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def no_accessibility_violations(page: Page) -> None:
    """Axe finds nothing on the view, once it has rendered (not while it is loading)."""
    expect(page.locator("#main > [role=status]")).to_have_count(0)
    expect(page.locator("#main h1")).to_be_visible()
    results = Axe().run(page)
    violations = [
        f"{v['id']}: {v['help']} ({[n['target'] for n in v['nodes']][:3]})"
        for v in results.response["violations"]
    ]
    assert not violations, violations


def test_a_wrong_token_is_refused_and_signing_out_closes_the_console(
    browser: Browser, instance: Instance
) -> None:
    for page in open_page(browser, instance):
        page.goto("/")
        no_accessibility_violations(page)
        shot(page, "sign-in")
        page.get_by_label("Admin token").fill("mpa_abcdefghijkl_wrong")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("unknown or revoked")
        sign_in(page, instance.token)
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_label("Admin token")).to_be_visible()
        page.goto(f"/{PATH}")
        expect(page.get_by_label("Admin token")).to_be_visible()


def test_path_to_node_to_account_to_delivery(page: Page) -> None:
    page.goto(f"/{PATH}")
    graph = page.get_by_role("group", name=re.compile("The growth path Platform merchant"))
    expect(graph).to_be_visible()
    node = graph.get_by_role(
        "link", name=re.compile("^Node Payout account connected: 1 accounts now")
    )
    expect(node).to_contain_text("1 overdue")
    figures = page.locator("#path-figures")
    expect(figures).to_contain_text("Day 1: complete the store profile")
    no_accessibility_violations(page)
    shot(page, "path")

    node.click()
    expect(
        page.get_by_role("heading", name="Accounts in account_setup / payout_account")
    ).to_be_visible()
    accounts = page.locator("#node-accounts")
    expect(accounts).to_contain_text("jasmine")
    expect(accounts).to_contain_text("overdue")
    no_accessibility_violations(page)
    shot(page, "node-accounts")

    accounts.get_by_role("link", name="jasmine").click()
    expect(page.get_by_role("heading", name="Account jasmine")).to_be_visible()
    expect(page.locator("#timeline")).to_contain_text("node overdue")
    expect(page.locator("#contacts")).to_contain_text("admin / product owner")
    expect(page.locator("#account-plans")).to_contain_text("overdue_reminder")
    no_accessibility_violations(page)
    shot(page, "account")

    page.locator("#account-deliveries").get_by_role("link", name="Open").first.click()
    expect(
        page.get_by_role("heading", name=re.compile("Delivery of platform-merchant-outreach"))
    ).to_be_visible()
    expect(page.get_by_role("heading", name="Attempts")).to_be_visible()
    expect(page.get_by_role("table", name="Attempts")).to_contain_text("deferred")
    no_accessibility_violations(page)
    shot(page, "delivery")


def test_a_manual_move_with_its_reason_lands_in_the_timeline(page: Page) -> None:
    page.goto("/#/w/demo/account/peony")
    page.get_by_label("Stage or node").select_option("complete_profile")
    page.get_by_label("Reason").fill("Approved on the phone")
    page.get_by_role("button", name="Move").click()
    expect(page.locator("#move-result")).to_contain_text("queued")
    for _ in range(40):
        page.reload()
        timeline = page.locator("#timeline")
        expect(timeline).to_be_visible()
        if "moved by hand" in timeline.inner_text():
            break
        page.wait_for_timeout(250)
    expect(page.locator("#timeline")).to_contain_text("Approved on the phone")
    # the admin token's label behind the session, never the token
    expect(page.locator("#timeline .actor").first).to_have_text("by embedded")


def test_a_mistake_is_shown_at_its_line_then_the_fixed_path_is_published(page: Page) -> None:
    page.goto("/#/w/demo/author?kind=path&id=platform-merchant")
    source = page.get_by_label("The file's YAML")
    original = source.input_value()
    lines = original.splitlines()
    line = next(i for i, text in enumerate(lines, 1) if text.strip() == "due: P2D")
    source.fill(original.replace("due: P2D", "due: in two days", 1))
    page.get_by_role("button", name="Validate").click()
    problem = page.locator("#problems li").first
    expect(problem).to_contain_text(f"Line {line},")
    expect(problem).to_contain_text("due")
    expect(page.locator(".gutter .bad")).to_have_text(str(line))
    expect(source).to_have_attribute("aria-invalid", "true")
    problem.get_by_role("button").click()
    expect(source).to_be_focused()
    no_accessibility_violations(page)
    shot(page, "author-problem")

    source.fill(original.replace("due: P2D", "due: P3D", 1))
    page.get_by_role("button", name="Validate").click()
    expect(page.locator("#author-result")).to_have_text("Valid: no problem found.")
    page.get_by_role("button", name="Publish a new version").click()
    expect(page.locator("#author-result")).to_have_text("Published as version 2.")
    expect(page.locator("#versions")).to_contain_text("v2")
    shot(page, "author")

    page.goto(f"/{PATH}")
    expect(page.get_by_label("Version", exact=True)).to_contain_text("v2")
    expect(page.locator("#path-figures")).to_contain_text("Application approved")


def test_a_draft_is_simulated_with_its_outreach_and_shown_beside_the_live_figures(
    page: Page,
) -> None:
    page.goto("/#/w/demo/author?kind=path&id=platform-merchant")
    source = page.get_by_label("The file's YAML")
    expect(source).to_have_value(re.compile("stages:"))
    source.fill(source.input_value().replace("due: P2D", "due: P5D", 1))
    page.get_by_role("button", name="Simulate on recent events").click()
    expect(page.locator("#author-result")).to_contain_text("Simulated on")
    expect(page.locator("#simulation-summary")).to_contain_text("events replayed")
    expect(page.locator("#simulation-nodes")).to_contain_text("approved")
    expect(page.locator("#simulation-outreach")).to_be_visible()
    no_accessibility_violations(page)
    shot(page, "author-simulation")

    page.goto(f"/{PATH}")
    beside = page.locator("#simulation-beside")
    expect(beside).to_contain_text("Application approved")
    expect(beside).to_contain_text("Simulated: accounts at the end")


def test_a_saved_draft_and_a_draft_playbook_are_compared_with_the_live_figures(
    page: Page,
) -> None:
    page.goto("/#/w/demo/author?kind=playbook&id=platform-merchant-outreach")
    source = page.get_by_label("The file's YAML")
    expect(source).to_have_value(re.compile("overdue_reminder"))
    source.fill(source.input_value().replace("paths: [platform-merchant]", "paths: [elsewhere]"))
    page.get_by_label("Draft name").fill("silent")
    page.get_by_role("button", name="Save as draft").click()
    expect(page.locator("#author-result")).to_have_text("Saved as draft silent in this browser.")
    page.goto("/#/w/demo/author?kind=path&id=platform-merchant")
    source = page.get_by_label("The file's YAML")
    expect(source).to_have_value(re.compile("stages:"))
    source.fill(source.input_value() + "\n# a slower draft\n")
    page.get_by_label("Draft name").fill("slower")
    page.get_by_role("button", name="Save as draft").click()
    expect(page.locator("#author-result")).to_have_text("Saved as draft slower in this browser.")
    page.get_by_label(re.compile("^silent")).check()
    page.get_by_role("button", name="Simulate on recent events").click()
    expect(page.locator("#author-result")).to_contain_text("Simulated on")
    expect(page.get_by_text("No playbook step would send a message.")).to_be_visible()

    page.goto(f"/{PATH}")
    page.get_by_label("Draft of this path").select_option("slower")
    page.get_by_label(re.compile("^silent")).check()
    page.get_by_role("button", name="Compare").click()
    expect(page).to_have_url(re.compile("draft=slower&playbooks=silent$"))
    chosen = page.get_by_role("heading", name=re.compile("^Draft slower"))
    expect(chosen).to_be_visible()
    expect(page.locator("#simulation-beside")).to_contain_text("Application approved")
    expect(page.locator("#draft-playbooks-used")).to_contain_text("draft playbooks silent")
    expect(page.get_by_text("No playbook step would send a message.")).to_be_visible()
    no_accessibility_violations(page)
    shot(page, "path-draft")

    page.reload()  # the address alone brings the same comparison back
    expect(chosen).to_be_visible()
    expect(page.get_by_label("Draft of this path")).to_have_value("slower")
    page.get_by_label(re.compile("^silent")).uncheck()
    page.get_by_role("button", name="Compare").click()
    expect(page.locator("#draft-playbooks-used")).to_contain_text("current playbooks")
    expect(page.locator("#simulation-outreach")).to_be_visible()


def test_a_playbook_and_the_metric_definitions_open_and_validate(page: Page) -> None:
    page.goto("/#/w/demo/author?kind=playbook")
    page.get_by_label("File", exact=True).select_option("platform-merchant-outreach")
    source = page.get_by_label("The file's YAML")
    expect(source).to_have_value(re.compile("overdue_reminder"))
    page.get_by_role("button", name="Validate").click()
    expect(page.locator("#author-result")).to_have_text("Valid: no problem found.")
    page.get_by_label("Kind of file").select_option("metrics")
    expect(source).to_have_value(re.compile("north_star"))
    page.get_by_role("button", name="Validate").click()
    expect(page.locator("#author-result")).to_have_text("Valid: no problem found.")
    expect(page.locator("#versions")).to_contain_text("v1")


def test_portfolio_and_work(page: Page) -> None:
    page.goto("/#/w/demo/portfolio?risk=medium")
    expect(page.locator("#at-risk")).to_contain_text("Li Na")
    heatmap = page.get_by_role("img", name=re.compile("Accounts and mean health per tier"))
    expect(heatmap).to_contain_text("L1")
    expect(page.get_by_role("img", name=re.compile("^Renewal rate"))).to_be_visible()
    no_accessibility_violations(page)
    shot(page, "portfolio")

    page.goto("/#/w/demo/work")
    expect(page.locator("table.tasks").first).to_contain_text("call the merchant's admin")
    expect(page.get_by_role("heading", name=re.compile("^Li Na — "))).to_be_visible()
    no_accessibility_violations(page)
    shot(page, "work-tasks")

    page.get_by_role("link", name="Deliveries log").click()
    page.get_by_label("Status").select_option("deferred")
    with page.expect_response(re.compile(r"/deliveries\?.*status=deferred")):
        page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile("status=deferred"))
    rows = page.locator("#deliveries tbody tr")
    expect(rows.first).to_contain_text("deferred")
    no_accessibility_violations(page)
    shot(page, "work-deliveries")


def test_switching_language_and_the_browsers_language_by_default(
    page: Page, browser: Browser, instance: Instance
) -> None:
    page.goto(f"/{PATH}")
    page.get_by_label("Language").select_option("zh-CN")
    expect(page.get_by_role("navigation", name="视图")).to_contain_text("成长路径")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("#path-figures")).to_contain_text("转化率")
    no_accessibility_violations(page)
    shot(page, "path-zh")
    page.reload()
    expect(page.get_by_role("link", name="客户组合")).to_be_visible()
    unmatched = page.evaluate(
        """async () => {
          const { DICTIONARIES } = await import("/console/js/i18n.js");
          const [en, zh] = [DICTIONARIES.en, DICTIONARIES["zh-CN"]].map(Object.keys);
          return [en.filter((k) => !zh.includes(k)), zh.filter((k) => !en.includes(k))];
        }"""
    )
    assert unmatched == [[], []]

    for chinese in open_page(browser, instance, locale="zh-CN"):
        chinese.goto("/")
        expect(chinese.get_by_role("heading", name="登录 Milepost 控制台")).to_be_visible()
        expect(chinese.get_by_label("管理令牌")).to_be_visible()


def test_the_keyboard_reaches_a_node_and_opens_it(page: Page) -> None:
    page.goto(f"/{PATH}")
    page.reload()
    expect(page.locator("#path-figures")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    expect(page).to_have_url(re.compile(re.escape(PATH) + "$"))
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.dataset.node") == "application_approved":
            break
    else:
        raise AssertionError("no node of the graph is reachable with Tab")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile("node=application_approved"))
    expect(page.locator("#node-accounts")).to_contain_text("lotus")
