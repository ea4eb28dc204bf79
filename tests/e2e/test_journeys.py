"""Issue 8's journeys in a real browser: what a person does with Tideline, start to end.

Each test signs in as its own user (or the demo user, whose data the tests leave as they
found it), and drives the pages by their labels and roles, as a user (or a screen reader)
finds them. Screenshots for the README are written to docs/screenshots/.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.e2e.conftest import DEFAULT_TIMEOUT_MS
from tests.e2e.support import AppServer, check_accessibility, log_in, save_screenshot, sign_up

pytestmark = [pytest.mark.e2e, pytest.mark.service("browser"), pytest.mark.slow]

PASSWORD = "tide-line-journeys-2026"
DEMO_USERNAME, DEMO_PASSWORD = "demo", "tideline-demo"
FERNS = "Water the ferns"
HOME = re.compile(r"^https?://[^/]+/$")


def unique(prefix: str) -> str:
    """A username no other test (or earlier run on the same database) has taken."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def quick_add_box(page: Page) -> Locator:
    return page.get_by_role("textbox", name="Quick add")


def quick_add(page: Page, text: str, title: str) -> None:
    """Type ``text`` into quick add, press Enter, and wait for the page to say it was added."""
    quick_add_box(page).fill(text)
    quick_add_box(page).press("Enter")
    expect(page.get_by_role("status").first).to_contain_text(f"Added “{title}”")


def task_row(page: Page, title: str) -> Locator:
    """The list row of the pending task ``title`` (the one with a "Complete" button)."""
    return page.get_by_role("listitem").filter(
        has=page.get_by_role("button", name=f"Complete “{title}”")
    )


def due_day(row: Locator) -> dt.date:
    """The due day of the task in ``row`` (from the machine-readable <time>)."""
    stamp = row.locator("time").first.get_attribute("datetime")
    assert stamp, "the row shows no due date"
    return dt.datetime.fromisoformat(stamp).date()


def day_words(day: dt.date) -> str:
    """A date as the recurrence preview writes it: "Thu 17 Dec 2026"."""
    return f"{day:%a} {day.day} {day:%b %Y}"


def expect_selected_after_swap(row: Locator) -> None:
    """``row``, just replaced by htmx, is still the selected one once htmx has settled it
    (its links and forms work through htmx only from then on, 20 ms after the swap)."""
    expect(row).to_have_class(re.compile(r"\bis-selected\b"))
    expect(row).to_be_focused()
    expect(row).not_to_have_class(re.compile(r"\bhtmx-added\b"))


#: Marks every control a user can reach (shown, enabled, not in a closed dialog or
#: details) with ``data-e2e-control``; returns how many there are.
MARK_CONTROLS_JS = """() => {
    const selector = 'a[href], button, input:not([type=hidden]), select, textarea, summary,'
        + ' [tabindex]:not([tabindex="-1"])';
    const hidden = 'dialog:not([open]), details:not([open]) > :not(summary)';
    const all = [...document.querySelectorAll(selector)].filter((el) => !el.disabled
        && !el.closest(hidden) && el.checkVisibility({visibilityProperty: true}));
    all.forEach((el, i) => { el.dataset.e2eControl = String(i); });
    return all.length;
}"""
#: The focused element: its mark, what it is, and its focus style.
FOCUSED_JS = """() => {
    const el = document.activeElement;
    const style = getComputedStyle(el);
    return {index: el.dataset.e2eControl ?? null, tag: el.tagName,
            name: el.getAttribute('aria-label') || el.textContent.trim().slice(0, 40),
            outline: style.outlineStyle, width: style.outlineWidth, shadow: style.boxShadow};
}"""


def tab_through(page: Page) -> tuple[int, dict[str, dict]]:
    """Press Tab until every control has had the focus (or four times as many presses:
    a date field takes one per part). Returns the number of controls, and each reached
    control's focus style by its mark."""
    controls = page.evaluate(MARK_CONTROLS_JS)
    page.evaluate("document.activeElement.blur()")
    reached: dict[str, dict] = {}
    for _ in range(controls * 4):
        page.keyboard.press("Tab")
        focused = page.evaluate(FOCUSED_JS)
        if focused["index"] is not None:
            reached.setdefault(focused["index"], focused)
        if len(reached) == controls:
            break
    return controls, reached


@pytest.fixture
def no_js_page(browser: Browser, app_server: AppServer) -> Iterator[Page]:
    """A desktop tab with JavaScript switched off."""
    context = browser.new_context(
        base_url=app_server.url, java_script_enabled=False, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    try:
        yield context.new_page()
    finally:
        context.close()


def test_the_whole_journey_from_sign_up_to_log_out(page: Page):
    username = unique("fern")
    sign_up(page, username, PASSWORD)
    expect(page.get_by_role("status").first).to_contain_text(f"Welcome to Tideline, {username}!")
    quick_add(page, "Buy potting soil tomorrow p4", "Buy potting soil")

    # Quick add: the preview says what it read before anything is saved.
    quick_add_box(page).fill(f"{FERNS} every monday at 9am @plants p2 remind 1 hour before")
    chips = page.get_by_role("list", name="Quick add will create")
    expect(chips).to_contain_text("repeat: every week on Monday")
    expect(chips).to_contain_text("tag: @plants")
    expect(chips).to_contain_text("priority: High (p2)")
    expect(chips).to_contain_text("reminder: 1 hour before")
    expect(task_row(page, FERNS)).to_have_count(0)
    save_screenshot(page, "quick-add-preview")
    quick_add_box(page).press("Enter")
    expect(page.get_by_role("status").first).to_contain_text(f"Added “{FERNS}”")

    ferns = task_row(page, FERNS)
    expect(ferns.get_by_title("Repeats")).to_contain_text("every week on Monday")
    expect(ferns.get_by_title("Reminder")).to_be_visible()
    expect(ferns.get_by_role("link", name="@plants")).to_be_visible()
    expect(ferns.get_by_title("Priority")).to_contain_text("High")
    check_accessibility(page)

    # Find it with a filter...
    soil = task_row(page, "Buy potting soil")
    page.get_by_text("Filter and sort").click()
    page.get_by_role("checkbox", name="High").check()
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"/tasks/\?(.+&)?priority=high(&|$)"))
    expect(ferns).to_be_visible()
    expect(soil).to_have_count(0)

    # ... and with the search box.
    search = page.get_by_role("searchbox", name="Search tasks")
    search.fill("ferns")
    search.press("Enter")
    expect(page).to_have_url(re.compile(r"/tasks/\?search=ferns$"))
    expect(page.get_by_role("heading", name="Search: ferns")).to_be_visible()
    expect(ferns).to_be_visible()
    expect(soil).to_have_count(0)

    # Complete it: the next instance appears in place, due a week later.
    page.get_by_role("link", name="Tideline", exact=True).click()
    expect(page).to_have_url(HOME)
    first_due = due_day(ferns)
    page.get_by_role("button", name=f"Complete “{FERNS}”").click()
    expect(page.get_by_role("button", name=f"Reopen “{FERNS}”")).to_be_visible()
    next_instance = page.get_by_role("listitem").filter(has_text="Next instance")
    expect(next_instance).to_be_visible()
    expect(next_instance.get_by_role("button", name=f"Complete “{FERNS}”")).to_be_visible()
    assert due_day(next_instance) == first_due + dt.timedelta(weeks=1)
    row_ids = page.locator("[data-task-row]").evaluate_all("rows => rows.map(r => r.id)")
    done_id = (
        page.get_by_role("listitem")
        .filter(has=page.get_by_role("button", name=f"Reopen “{FERNS}”"))
        .get_attribute("id")
    )
    assert row_ids.index(next_instance.get_attribute("id")) == row_ids.index(done_id) + 1

    # The new instance's page: its series, with the completed one as history.
    next_due = due_day(next_instance)
    next_instance.get_by_role("link", name=FERNS, exact=True).click()
    expect(page.get_by_role("heading", level=1, name=FERNS)).to_be_visible()
    expect(page.get_by_role("main")).to_contain_text(
        re.compile("every week on Monday", re.IGNORECASE)
    )
    earlier = page.get_by_role("region", name="Series").get_by_role("table")
    expect(earlier.get_by_role("row")).to_have_count(2)  # the header, the completed one
    expect(earlier).to_contain_text(day_words(first_due))
    check_accessibility(page)
    save_screenshot(page, "task-page")
    page.get_by_role("link", name="← All tasks").click()

    # Edit it in the dialog: the preview follows the rule as it changes.
    expect(ferns).to_be_visible()
    ferns.get_by_role("link", name=f"Edit “{FERNS}”").click()
    dialog = page.get_by_role("dialog", name="Edit task")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("checkbox", name="Monday")).to_be_checked()
    preview = dialog.get_by_role("status")
    expect(preview).to_contain_text("Repeats every week on Monday")
    expect(preview).not_to_contain_text("Thursday")
    dialog.get_by_role("checkbox", name="Thursday").check()
    expect(preview).to_contain_text("Repeats every week on Monday and Thursday")
    expect(preview).to_contain_text(day_words(next_due + dt.timedelta(days=3)))
    check_accessibility(page)
    dialog.get_by_role("group", name="Repeat", exact=True).evaluate(
        "fieldset => fieldset.scrollIntoView({block: 'start'})"
    )
    save_screenshot(page, "task-form")
    dialog.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status").first).to_contain_text("Task saved")
    expect(dialog).to_be_hidden()
    expect(ferns.get_by_title("Repeats")).to_contain_text("every week on Monday and Thursday")

    # Save a view (the tag's list), and open it from the sidebar.
    page.get_by_role("link", name="@plants").click()
    expect(page).to_have_url(re.compile(r"/tasks/\?tags=plants$"))
    page.get_by_label("Name for this view").fill("Fern care")
    page.get_by_role("button", name="Save view").click()
    expect(page.get_by_role("status").first).to_contain_text("Saved view “Fern care”")
    sidebar = page.get_by_role("navigation", name="Task views")
    page.get_by_role("link", name="Tideline", exact=True).click()
    expect(page).to_have_url(HOME)
    sidebar.get_by_role("link", name="Fern care").click()
    expect(page).to_have_url(re.compile(r"/views/\d+/$"))
    expect(page.get_by_role("heading", level=1, name="Fern care")).to_be_visible()
    expect(sidebar.get_by_role("link", name="Fern care")).to_have_attribute("aria-current", "page")
    expect(ferns).to_be_visible()
    expect(soil).to_have_count(0)
    view_url = page.url

    # Delete, then undo: the task is back, and still there after a reload.
    page.once("dialog", lambda confirm: confirm.accept())
    ferns.get_by_role("button", name=f"Delete “{FERNS}”").click()
    expect(ferns).to_be_hidden()
    page.get_by_role("button", name="Undo").click()
    expect(ferns).to_be_visible()
    expect(page.get_by_role("status").first).to_contain_text(f"“{FERNS}” is back.")
    page.reload()
    expect(ferns).to_be_visible()

    # Delete for good: leaving the page sends the delete at once.
    page.once("dialog", lambda confirm: confirm.accept())
    ferns.get_by_role("button", name=f"Delete “{FERNS}”").click()
    expect(ferns).to_be_hidden()
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", level=1, name="Settings")).to_be_visible()
    check_accessibility(page)
    page.goto(view_url)
    expect(page.get_by_role("heading", level=1, name="Fern care")).to_be_visible()
    expect(ferns).to_have_count(0)

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r"/accounts/login/$"))
    expect(page.get_by_role("heading", level=1, name="Log in")).to_be_visible()
    expect(page.get_by_role("status").first).to_contain_text("You are logged out.")
    check_accessibility(page)


def test_the_list_is_usable_with_the_keyboard_alone(page: Page, app_server: AppServer):
    app_server.manage("seed_demo")
    log_in(page, DEMO_USERNAME, DEMO_PASSWORD)
    rows = page.locator("[data-task-row]")
    expect(rows.first).to_be_visible()
    save_screenshot(page, "list")

    page.keyboard.press("j")
    first, second = rows.nth(0), rows.nth(1)
    expect(first).to_have_class(re.compile(r"\bis-selected\b"))
    expect(first).to_be_focused()
    page.keyboard.press("j")
    expect(second).to_have_class(re.compile(r"\bis-selected\b"))
    expect(second).to_be_focused()
    expect(first).not_to_have_class(re.compile(r"\bis-selected\b"))
    page.keyboard.press("k")
    expect(first).to_be_focused()

    title = first.get_attribute("data-title")
    page.keyboard.press("x")
    expect(page.get_by_role("button", name=f"Reopen “{title}”")).to_be_visible()
    expect_selected_after_swap(first)
    page.keyboard.press("x")
    expect(page.get_by_role("button", name=f"Complete “{title}”")).to_be_visible()
    expect_selected_after_swap(first)

    page.keyboard.press("e")
    dialog = page.get_by_role("dialog", name="Edit task")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Title")).to_have_value(title)
    assert dialog.evaluate("box => box.contains(document.activeElement)")
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()

    page.keyboard.press("?")
    shortcuts = page.get_by_role("dialog", name="Keyboard shortcuts")
    expect(shortcuts).to_be_visible()
    page.keyboard.press("Escape")
    expect(shortcuts).to_be_hidden()

    page.keyboard.press("/")
    expect(page.get_by_role("searchbox", name="Search tasks")).to_be_focused()
    page.keyboard.press("Shift+Tab")  # out of the box: letters are shortcuts again
    page.keyboard.press("q")
    expect(quick_add_box(page)).to_be_focused()
    expect(quick_add_box(page)).to_have_value("")

    # Tab reaches every control, and each shows where the focus is.
    controls, reached = tab_through(page)
    missed = page.evaluate(
        """(reached) => [...document.querySelectorAll('[data-e2e-control]')]
            .filter((el) => !reached.includes(el.dataset.e2eControl))
            .map((el) => el.outerHTML.slice(0, 120))""",
        list(reached),
    )
    assert missed == [], f"Tab reaches {len(reached)} of {controls} controls, not these"
    invisible = [
        f"{c['tag']} {c['name']!r}"
        for c in reached.values()
        if (c["outline"] == "none" or c["width"] == "0px") and c["shadow"] == "none"
    ]
    assert invisible == [], "no visible focus style on these controls"


@pytest.mark.parametrize("focus", ["on its circle", "dropped to the page"])
def test_a_change_from_another_window_keeps_the_keyboards_place(page: Page, focus: str):
    """A change made in another window refreshes the list; the selected row stays selected
    and the focus comes back to where it was (or, when it had dropped to the page, to the
    selected row), so the next key acts where it did."""
    sign_up(page, unique("keys"), PASSWORD)
    for title in ("Walk the dog", "Buy stamps", "Return the books"):
        quick_add(page, f"{title} tomorrow", title)
    page.goto("/")
    page.wait_for_function("document.documentElement.dataset.live === 'open'")
    rows = page.locator("[data-task-row]")
    expect(rows).to_have_count(3)
    page.keyboard.press("j")
    page.keyboard.press("j")
    title = rows.nth(1).get_attribute("data-title")
    row = page.locator(f"#{rows.nth(1).get_attribute('id')}")
    circle = page.get_by_role("button", name=f"Complete “{title}”")
    if focus == "on its circle":
        page.keyboard.press("Tab")
        expect(circle).to_be_focused()
        focused_after = circle
    else:
        page.evaluate("document.activeElement.blur()")
        focused_after = row
    expect(row).to_have_class(re.compile(r"\bis-selected\b"))

    elsewhere = page.context.new_page()
    elsewhere.goto("/")
    quick_add(elsewhere, "Post the letter tomorrow", "Post the letter")
    page.wait_for_function("document.documentElement.dataset.liveRefreshed !== undefined")

    expect(task_row(page, "Post the letter")).to_be_visible()
    expect(row).to_have_class(re.compile(r"\bis-selected\b"))
    expect(page.locator("[data-task-row].is-selected")).to_have_count(1)
    expect(focused_after).to_be_focused()
    page.keyboard.press("x")
    expect(page.get_by_role("button", name=f"Reopen “{title}”")).to_be_visible()


def test_on_a_phone_the_list_fits_and_the_sidebar_is_a_drawer(phone_page: Page):
    page = phone_page
    sign_up(page, unique("phone"), PASSWORD)
    quick_add(page, "Call the plumber tomorrow 8am p1 @home", "Call the plumber")
    quick_add(page, "Pick up dry cleaning friday @errands", "Pick up dry cleaning")
    plumber = task_row(page, "Call the plumber")
    expect(plumber).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    check_accessibility(page)
    save_screenshot(page, "phone", full_page=True)

    sidebar = page.get_by_role("navigation", name="Task views")
    menu = page.get_by_role("button", name="Menu")
    expect(sidebar).to_be_hidden()
    menu.tap()
    expect(sidebar).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "true")
    expect(sidebar.get_by_role("link", name="home")).to_be_visible()
    menu.tap()
    expect(sidebar).to_be_hidden()

    plumber.get_by_role("button", name="Complete “Call the plumber”").tap()
    expect(page.get_by_role("button", name="Reopen “Call the plumber”")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 360


def test_every_action_works_with_javascript_switched_off(no_js_page: Page):
    page = no_js_page
    sign_up(page, unique("nojs"), PASSWORD)

    quick_add_box(page).fill("Renew the library card friday p2")
    page.get_by_role("button", name="Add task").click()
    expect(page.get_by_role("status")).to_contain_text("Added “Renew the library card”")
    card = task_row(page, "Renew the library card")
    expect(card).to_be_visible()

    card.get_by_role("button", name="Complete “Renew the library card”").click()
    expect(page.get_by_role("status")).to_contain_text("Completed “Renew the library card”.")
    expect(card).to_have_count(0)  # the list shows pending tasks

    sidebar = page.get_by_role("navigation", name="Task views")
    sidebar.get_by_role("link", name="Completed").click()
    done = page.get_by_role("listitem").filter(
        has=page.get_by_role("button", name="Reopen “Renew the library card”")
    )
    expect(done).to_be_visible()

    done.get_by_role("button", name="Delete “Renew the library card”").click()
    expect(page).to_have_url(re.compile(r"/tasks/\d+/delete/"))
    expect(page.get_by_role("heading", name="Delete “Renew the library card”?")).to_be_visible()
    page.get_by_role("button", name="Delete task").click()
    expect(page.get_by_role("status")).to_contain_text("Deleted “Renew the library card”.")
    expect(page.get_by_role("link", name="Renew the library card")).to_have_count(0)


def test_a_second_user_never_sees_the_first_users_task(page: Page):
    sign_up(page, unique("first"), PASSWORD)
    quick_add(page, "Write the secret diary tonight", "Write the secret diary")
    page.get_by_role("link", name="Write the secret diary", exact=True).click()
    expect(page).to_have_url(re.compile(r"/tasks/\d+/$"))
    task_url = page.url
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", level=1, name="Log in")).to_be_visible()

    sign_up(page, unique("second"), PASSWORD)
    expect(page.get_by_role("link", name="Write the secret diary")).to_have_count(0)
    response = page.goto(task_url)

    assert response is not None and response.status == 404
    expect(page.get_by_text("Write the secret diary")).to_have_count(0)


def test_going_back_to_the_list_shows_it_as_it_is_now(page: Page):
    sign_up(page, unique("back"), PASSWORD)
    quick_add(page, "Return the drill tomorrow", "Return the drill")
    page.get_by_role("button", name="Complete “Return the drill”").click()
    expect(page.get_by_role("button", name="Reopen “Return the drill”")).to_be_visible()
    page.get_by_role("link", name="Return the drill", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Return the drill")

    page.go_back()

    # The list is asked for again (never served from the browser's cache): the completed
    # task has left the pending list instead of showing as still to do.
    expect(page.get_by_role("heading", level=1)).to_contain_text("0 tasks")
    expect(page.get_by_role("button", name="Complete “Return the drill”")).to_have_count(0)
    expect(page.get_by_role("link", name="Completed 1")).to_be_visible()
