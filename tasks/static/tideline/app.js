/* Tideline's small enhancements. Every page works without this file: links and forms
   post and redirect. With it: a dialog for the task form, delete with undo, keyboard use. */
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  const UNDO_SECONDS = 6;
  const csrfToken = () => {
    const headers = document.body.getAttribute("hx-headers");
    try { return JSON.parse(headers)["X-CSRFToken"]; } catch (e) { return ""; }
  };

  /* --- the dialog that htmx fills (task form) --------------------------------------- */
  const dialog = () => document.getElementById("dialog");
  document.addEventListener("htmx:afterSwap", (event) => {
    const target = event.detail.target;
    if (!target || target.id !== "dialog") return;
    if (!target.open) {
      target.showModal();
      const first = target.querySelector("input:not([type=hidden]), select, textarea");
      if (first) first.focus();
      return;
    }
    // The form came back with errors: go to the first field that has one.
    const invalid = target.querySelector('[aria-invalid="true"], [role="alert"]');
    if (invalid) {
      if (!invalid.matches("input, select, textarea, button")) invalid.setAttribute("tabindex", "-1");
      invalid.focus();
    }
  });
  document.addEventListener("click", (event) => {
    if (event.target.closest("[data-close-dialog]")) {
      const box = event.target.closest("dialog");
      if (box) box.close();
    }
  });
  document.addEventListener("close", (event) => {
    if (event.target.id === "dialog") event.target.replaceChildren();
  }, true);

  /* --- delete with undo -------------------------------------------------------------- */
  const pending = new Map(); // row id -> {url, timer, row, toast}

  function sendDelete(url) {
    const body = new URLSearchParams({ csrfmiddlewaretoken: csrfToken(), next: location.pathname + location.search });
    return fetch(url, {
      method: "POST", body, keepalive: true, credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), "X-Requested-With": "fetch" },
    });
  }

  function finishDelete(id) {
    const item = pending.get(id);
    if (!item) return;
    pending.delete(id);
    clearTimeout(item.timer);
    item.toast.remove();
    sendDelete(item.url).then((response) => {
      if (!response.ok) { item.row.hidden = false; announce("The task could not be deleted.", "error"); return; }
      item.row.remove();
      return response.text().then((html) => {
        if (html && window.htmx) htmx.swap(document.getElementById("sidebar"), html, { swapStyle: "outerHTML" });
      });
    }).catch(() => { item.row.hidden = false; announce("The task could not be deleted: you seem to be offline.", "error"); });
  }

  function undoDelete(id) {
    const item = pending.get(id);
    if (!item) return;
    pending.delete(id);
    clearTimeout(item.timer);
    item.toast.remove();
    item.row.hidden = false;
    item.row.focus();
    announce(`“${item.row.dataset.title}” is back.`, "success");
  }

  document.addEventListener("submit", (event) => {
    const form = event.target.closest("form[data-undoable-delete]");
    if (!form) return;
    event.preventDefault();
    const row = form.closest("[data-task-row]");
    const title = row ? row.dataset.title : "this task";
    if (!window.confirm(`Delete “${title}”?`)) return;
    const toast = document.createElement("div");
    toast.className = "undo-toast";
    toast.setAttribute("role", "status");
    toast.innerHTML = '<span></span><button type="button" class="btn btn-small">Undo</button>';
    toast.querySelector("span").textContent = `Deleted “${title}”.`;
    toast.querySelector("button").addEventListener("click", () => undoDelete(row.id));
    document.body.appendChild(toast);
    const next = row.nextElementSibling || row.previousElementSibling;
    row.hidden = true;
    const item = { url: form.dataset.undoableDelete, row, toast, next, timer: null };
    // The undo time runs while the focus is elsewhere: a keyboard or screen-reader user on
    // the Undo button has as long as they need.
    const arm = () => { clearTimeout(item.timer); item.timer = setTimeout(() => expire(row.id), UNDO_SECONDS * 1000); };
    toast.addEventListener("focusout", arm);
    toast.addEventListener("focusin", () => clearTimeout(item.timer));
    pending.set(row.id, item);
    arm();
    toast.querySelector("button").focus();
  });

  function expire(id) {
    const item = pending.get(id);
    if (!item) return;
    const focusWasInToast = item.toast.contains(document.activeElement);
    if (focusWasInToast) return; // focusout re-arms the timer
    finishDelete(id);
    if (item.next && item.next.matches("[data-task-row]") && document.activeElement === document.body) select(item.next, false);
  }
  // Leaving the page: deletes still waiting for their undo time are sent now.
  window.addEventListener("pagehide", () => { for (const id of [...pending.keys()]) finishDelete(id); });

  function announce(text, level) {
    const box = document.getElementById("messages");
    if (!box) return;
    const message = document.createElement("div");
    message.className = `message message-${level}`;
    message.textContent = text;
    box.replaceChildren(message);
  }

  /* --- keyboard ---------------------------------------------------------------------- */
  const rows = () => [...document.querySelectorAll("[data-task-row]:not([hidden])")];
  function select(row, scroll = true) {
    rows().forEach((r) => r.classList.remove("is-selected"));
    row.classList.add("is-selected");
    row.focus({ preventScroll: !scroll });
    if (scroll) row.scrollIntoView({ block: "nearest" });
  }
  const selected = () => document.querySelector("[data-task-row].is-selected:not([hidden])")
    || (document.activeElement && document.activeElement.closest && document.activeElement.closest("[data-task-row]"));

  function typing(target) {
    return target.closest("input, textarea, select, [contenteditable], dialog[open]");
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    const list = rows();
    const current = selected();
    const index = current ? list.indexOf(current) : -1;
    const act = (name) => {
      if (!current) return false;
      const control = current.querySelector(`[data-action="${name}"]`);
      if (control) control.click();
      return Boolean(control);
    };
    switch (event.key) {
      case "j": if (list.length) select(list[Math.min(index + 1, list.length - 1)]); break;
      case "k": if (list.length) select(list[Math.max(index - 1, 0)]); break;
      case "x": if (!act("toggle")) return; break;
      case "e": if (!act("edit")) return; break;
      case "Enter": if (!current || event.target !== current || !act("open")) return; break;
      case "#": case "Delete": if (!act("delete")) return; break;
      case "q": { const box = document.querySelector('[data-shortcut="quick-add"]'); if (!box) return; box.focus(); break; }
      case "/": { const box = document.querySelector('[data-shortcut="search"]'); if (!box) return; box.focus(); box.select(); break; }
      case "?": { const help = document.getElementById("shortcuts"); if (!help) return; help.showModal(); break; }
      default: return;
    }
    event.preventDefault();
  });
  // A control inside a row, as a selector that finds it again in the row's new copy.
  const controlSelector = (control) => control.dataset.action ? `[data-action="${control.dataset.action}"]`
    : control.name ? `[name="${control.name}"]` : null;
  // After htmx replaces a row (complete, inline edit), the focus goes back to the control
  // that had it (the priority menu, the circle), and the row stays selected. Once settled:
  // until then htmx keeps the old row's class on the new one.
  let refocus = null;
  document.addEventListener("htmx:beforeSwap", (event) => {
    const target = event.detail.target;
    const active = document.activeElement;
    refocus = null;
    if (!target || !target.matches || !target.matches("[data-task-row]") || !target.contains(active) || active === target) return;
    refocus = { id: target.id, selector: controlSelector(active) };
  });
  document.addEventListener("htmx:afterSettle", (event) => {
    const id = event.detail.target && event.detail.target.id;
    if (!id || !id.startsWith("task-")) return;
    const row = document.getElementById(id);
    if (row && refocus && refocus.id === id) {
      const control = refocus.selector && row.querySelector(refocus.selector);
      refocus = null;
      select(row, false);
      if (control) control.focus();
      return;
    }
    // htmx moves the focus to the new row (same id), or drops it to <body> when the
    // focused control has no id; either way the replaced row had it.
    const active = document.activeElement;
    const wasFocused = !active || active === document.body
      || event.detail.target.contains(active) || (row && row.contains(active));
    if (row && wasFocused) select(row, false);
  });
  document.addEventListener("focusin", (event) => {
    const row = event.target.closest && event.target.closest("[data-task-row]");
    if (row) rows().forEach((r) => r.classList.toggle("is-selected", r === row));
  });

  /* --- the sidebar as a drawer on phones --------------------------------------------- */
  document.addEventListener("click", (event) => {
    const toggle = event.target.closest("[data-nav-toggle]");
    if (!toggle) return;
    const sidebar = document.getElementById("sidebar");
    const open = !sidebar.classList.contains("is-open");
    sidebar.classList.toggle("is-open", open);
    toggle.setAttribute("aria-expanded", String(open));
  });

  /* --- live updates: changes made elsewhere show here without a reload ---------------- */
  // The server pushes each change to this user's tasks (GET /live/, server-sent events; the
  // browser reconnects by itself, resuming after the last event it saw). The page then
  // fetches itself and swaps in the parts marked data-live-region: lists, counts, the task.
  const liveMeta = document.querySelector('meta[name="tideline-live"]');
  if (liveMeta && window.EventSource) {
    let refreshTimer = null;
    let refreshing = false;
    const scheduleRefresh = (delay = 120) => {
      clearTimeout(refreshTimer);
      refreshTimer = setTimeout(refreshLiveRegions, delay);
    };
    // Never swap away a field someone is typing in; a focused checkbox or link is restored.
    const editing = (element) => element.matches(
      "textarea, select, [contenteditable], input:not([type=checkbox]):not([type=radio]):not([type=submit])");
    const showGone = () => {
      document.querySelectorAll("[data-live-gone]").forEach((region) => {
        const note = document.createElement("div");
        note.className = "empty-state";
        note.textContent = region.dataset.liveGone;
        region.replaceChildren(note);
        announce(region.dataset.liveGone, "warning");
      });
    };
    const refreshLiveRegions = async () => {
      // A delete waiting for its undo would come back: refresh once it is sent.
      if (refreshing || pending.size) { scheduleRefresh(1000); return; }
      refreshing = true;
      try {
        const response = await fetch(location.href, { credentials: "same-origin" });
        if (response.status === 404) { showGone(); return; }
        if (!response.ok) return;
        const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
        // The keyboard's place survives the refresh: the selected row, and the focus on an
        // element with an id, on a control inside a row (the circle), or, when the focus had
        // dropped to the page (a row swapped by htmx as the refresh came), the selected row.
        const active = document.activeElement;
        const focused = active && active.id;
        const activeRow = !focused && active && active.closest && active.closest("[data-task-row]");
        const refocusInRow = activeRow && activeRow.id && { id: activeRow.id, selector: controlSelector(active) };
        const selectedRow = selected();
        const selectedId = selectedRow && selectedRow.id;
        document.querySelectorAll("[data-live-region]").forEach((region) => {
          const replacement = fresh.getElementById(region.id);
          if (!replacement || region.contains(document.activeElement) && editing(document.activeElement)) return;
          replacement.classList.toggle("is-open", region.classList.contains("is-open"));
          region.replaceWith(replacement);
          if (window.htmx) window.htmx.process(replacement);
        });
        const found = selectedId && document.getElementById(selectedId);
        const stillSelected = found && !found.hidden ? found : null;
        if (stillSelected) rows().forEach((r) => r.classList.toggle("is-selected", r === stillSelected));
        const row = refocusInRow && document.getElementById(refocusInRow.id);
        const nowhere = !active || active === document.body;
        const again = focused ? document.getElementById(focused)
          : row ? (refocusInRow.selector && row.querySelector(refocusInRow.selector)) || row
          : nowhere ? stillSelected : null;
        if (again && again !== document.activeElement) again.focus({ preventScroll: true });
        document.documentElement.dataset.liveRefreshed = String(Date.now());
      } catch (e) {
        // Offline for a moment: the next change (or the reconnect's reset) refreshes.
      } finally {
        refreshing = false;
      }
    };
    const source = new EventSource(liveMeta.content);
    source.addEventListener("open", () => { document.documentElement.dataset.live = "open"; });
    source.addEventListener("error", () => { document.documentElement.dataset.live = "reconnecting"; });
    // A change this page already shows needs no refresh, which would undo what the page
    // shows of its own actions (a completed row with its Reopen button, a next instance
    // coming in place): its row was re-rendered with it (data-updated), a delete waits for
    // its undo, a repeating task completed here is fetching its next instance itself, or
    // only what rows do not show changed.
    const NOT_IN_ROWS = ["last_triggered_at", "next_occurrence_at", "updated_at"];
    const shownHere = (change) => {
      const task = change.task || {};
      const row = document.getElementById(`task-${change.task_id}`);
      if (change.type === "task.deleted") return !!row && row.hidden;
      if (row) {
        const invisible = change.type === "task.updated"
          && (change.changed || []).every((field) => NOT_IN_ROWS.includes(field));
        return invisible || Number(row.dataset.updated) >= Date.parse(task.updated_at);
      }
      const parent = task.parent && document.getElementById(`task-${task.parent}`);
      return change.type === "task.created" && !!parent && parent.classList.contains("is-done");
    };
    source.addEventListener("task", (event) => {
      let change = {};
      try { change = JSON.parse(event.data); } catch (e) { /* refresh anyway */ }
      if (!shownHere(change)) scheduleRefresh();
    });
    source.addEventListener("reset", () => scheduleRefresh());
  }

  /* --- copy buttons (API token): shown only where the clipboard can be written -------- */
  if (navigator.clipboard) {
    document.querySelectorAll("[data-copy]").forEach((button) => { button.hidden = false; });
  }
  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-copy]");
    if (!button) return;
    const field = document.getElementById(button.dataset.copy);
    navigator.clipboard.writeText(field.value).then(
      () => { button.textContent = "Copied"; },
      () => { field.select(); button.textContent = "Select and copy"; }
    );
  });
})();
