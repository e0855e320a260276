// Lesson page behaviour: click-to-run and copy buttons on code blocks, Tab stops on code blocks that
// scroll sideways, the views (phone tabs; the pane's terminal and editor tabs), and the step's
// setup once the sandbox is running. Check, Hint and Solution are
// plain htmx (see templates/lessons/); after a check the focus moves to its verdict, which flashes
// briefly so a sighted learner sees it changed.
(function () {
  "use strict";
  const gettext = window.gettext || ((text) => text);

  function terminal() {
    const el = document.getElementById("terminal");
    return el && typeof el.sendInput === "function" ? el : null;
  }

  function flash(button, text) {
    const original = button.dataset.label || button.textContent;
    button.dataset.label = original;
    button.textContent = text;
    setTimeout(() => { button.textContent = original; }, 1500);
  }

  function decorate(root) {
    root.querySelectorAll('pre[data-block="run"], pre[data-block="copy"]').forEach((pre) => {
      if (pre.dataset.decorated) return;
      pre.dataset.decorated = "1";
      const kind = pre.dataset.block;
      const command = pre.textContent.replace(/\n+$/, "");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "code-action";
      if (kind === "run") {
        button.textContent = gettext("▶ Run");
        button.title = gettext("Type this into your terminal");
        const run = () => {
          const term = terminal();
          if (!term) { flash(button, gettext("Start your sandbox first")); return; }
          // On a phone the terminal is a tab of its own: show it, so the learner sees what runs.
          showView("terminal");
          term.sendInput(command + "\n");
          if (term.terminal) term.terminal.focus();
        };
        button.addEventListener("click", run);
        // Clicking the block runs it too, unless the learner is selecting text to copy.
        pre.addEventListener("click", () => { if (!String(window.getSelection() || "")) run(); });
        pre.classList.add("runnable");
      } else {
        button.textContent = gettext("Copy");
        button.addEventListener("click", () => {
          if (navigator.clipboard) navigator.clipboard.writeText(command).then(() => flash(button, gettext("Copied")));
        });
      }
      pre.parentNode.insertBefore(button, pre.nextSibling);
    });
  }

  // A code block wider than its column scrolls sideways inside itself; the keyboard can only scroll
  // what it can focus, so such a block (and only such a block) is a named Tab stop.
  function markScrollable(root) {
    (root || document).querySelectorAll(".lesson-text pre").forEach((pre) => {
      const scrolls = pre.scrollWidth > pre.clientWidth + 1;
      if (scrolls && !pre.hasAttribute("data-scrolls")) {
        pre.setAttribute("data-scrolls", "");
        pre.setAttribute("tabindex", "0");
        pre.setAttribute("role", "group");
        pre.setAttribute("aria-label", gettext("Code (scrolls sideways)"));
      } else if (!scrolls && pre.hasAttribute("data-scrolls")) {
        ["data-scrolls", "tabindex", "role", "aria-label"].forEach((name) => pre.removeAttribute(name));
      }
    });
  }
  let markFrame = 0;
  const markSoon = () => {
    if (markFrame) return;
    markFrame = requestAnimationFrame(() => { markFrame = 0; markScrollable(document); });
  };
  window.addEventListener("resize", markSoon);
  const text = document.getElementById("lesson-text");
  if (text && window.ResizeObserver) new ResizeObserver(markSoon).observe(text);

  // The step's setup runs once the sandbox is up (the server makes it idempotent per sandbox).
  function runSetupIfReady() {
    const layout = document.querySelector(".lesson-layout[data-setup-url]");
    const pane = document.getElementById("sandbox-pane");
    if (!layout || !pane || pane.dataset.state !== "running" || !window.htmx) return;
    window.htmx.ajax("POST", layout.dataset.setupUrl, { swap: "none" });
  }

  // A new verdict: focus on it (the Check button was disabled during the request, which drops the
  // focus to the page) and a short highlight.
  const FLASH_MS = 2000;
  function showVerdict(result) {
    const verdict = result.querySelector(".verdict");
    if (!verdict) return;
    verdict.setAttribute("tabindex", "-1");
    verdict.focus({ preventScroll: false });
    const box = verdict.closest(".check-feedback") || verdict;
    box.classList.add("just-changed");
    setTimeout(() => box.classList.remove("just-changed"), FLASH_MS);
  }
  // Hint and Show solution replace themselves: the focus goes to what they revealed.
  function showRevealed(box) {
    const hints = box.querySelectorAll(".hint");
    const revealed = hints.length ? hints[hints.length - 1] : box.querySelector("[data-solution]");
    if (!revealed) return;
    revealed.setAttribute("tabindex", "-1");
    revealed.focus();
  }
  document.addEventListener("htmx:afterSettle", (ev) => {
    if (!ev.target) return;
    if (ev.target.id === "check-result") showVerdict(ev.target);
    else if (ev.target.id === "hints" || ev.target.id === "solution") showRevealed(ev.target);
  });
  // The finish page's Stop: the sandbox is gone, so say so in place of the buttons.
  document.addEventListener("htmx:afterRequest", (ev) => {
    const elt = ev.detail && ev.detail.elt;
    if (!ev.detail.successful || !elt || !elt.matches || !elt.matches("[data-finish-stop]")) return;
    const section = elt.closest(".finish-sandbox");
    const stopped = section && section.querySelector("[data-finish-stopped]");
    if (!stopped) return;
    elt.parentElement.hidden = true;
    stopped.hidden = false;
    stopped.setAttribute("tabindex", "-1");
    stopped.focus();
  });
  // A check that failed to reach the server leaves no verdict: the focus goes back to Check.
  document.addEventListener("htmx:afterRequest", (ev) => {
    const elt = ev.detail && ev.detail.elt;
    if (!ev.detail.successful && elt && elt.matches && elt.matches("[data-check], form.quiz")) {
      setTimeout(() => {
        const active = document.activeElement;
        if (!active || active === document.body) {
          const check = document.querySelector("button[data-check]");
          if (check) check.focus();
        }
      }, 0);
    }
  });

  // Views: on phones (lessons.css, at most 700 px) the instructions, the terminal and the editor
  // are the page's tabs; wider, the instructions are always shown and the pane's own tabs switch
  // between the terminal and the editor. One state, .lesson-layout[data-view], drives both.
  function showView(view) {
    const layout = document.querySelector(".lesson-layout");
    if (!layout) return;
    const editor = document.getElementById("editor-panel");
    if (view === "editor" && !editor) view = "terminal";
    const changed = layout.dataset.view !== view;
    layout.dataset.view = view;
    document.querySelectorAll("[data-view-tab]").forEach((tab) => {
      // The pane's tabs have no "instructions": the terminal is what the pane shows then.
      const shown = tab.closest(".pane-views") && view === "text" ? "terminal" : view;
      const selected = tab.dataset.viewTab === shown;
      tab.setAttribute("aria-selected", String(selected));
      tab.tabIndex = selected ? 0 : -1;
    });
    const terminalPanel = document.getElementById("terminal-panel");
    if (terminalPanel) terminalPanel.hidden = view === "editor";
    if (editor) editor.hidden = view !== "editor";
    const phoneEditorTab = document.getElementById("phone-tab-editor");
    if (phoneEditorTab) phoneEditorTab.hidden = !editor;
    if (changed) document.dispatchEvent(new CustomEvent("lesson:view", { detail: { view } }));
  }

  // Tabs as the ARIA pattern has them: one Tab stop per tab list, arrows move and show.
  document.addEventListener("click", (ev) => {
    const tab = ev.target.closest && ev.target.closest("[data-view-tab]");
    if (tab) showView(tab.dataset.viewTab);
  });
  document.addEventListener("keydown", (ev) => {
    const tab = ev.target.closest && ev.target.closest("[data-view-tab]");
    if (!tab) return;
    const tabs = [...tab.parentNode.querySelectorAll("[data-view-tab]")].filter((t) => !t.hidden);
    const at = tabs.indexOf(tab);
    const next = { ArrowRight: at + 1, ArrowLeft: at - 1, Home: 0, End: tabs.length - 1 }[ev.key];
    if (next === undefined) return;
    ev.preventDefault();
    const target = tabs[(next + tabs.length) % tabs.length];
    showView(target.dataset.viewTab);
    target.focus();
  });
  // The skip link to the terminal: on a phone its tab is shown first (capture: before terminal.js
  // moves the focus into it).
  document.addEventListener("click", (ev) => {
    if (ev.target.closest && ev.target.closest("[data-skip-to-terminal]")) showView("terminal");
  }, true);
  // A new pane (Start, Stop, Reset) gets the view the learner was on.
  document.addEventListener("htmx:afterSettle", () => {
    const layout = document.querySelector(".lesson-layout");
    const pane = document.getElementById("sandbox-pane");
    if (!layout || !pane || pane.dataset.viewsApplied) return;
    pane.dataset.viewsApplied = "1";
    const view = layout.dataset.view || "text";
    layout.dataset.view = "";
    showView(view);
  });

  document.addEventListener("DOMContentLoaded", () => { decorate(document); markSoon(); });
  document.body && document.body.addEventListener("htmx:load", (ev) => { decorate(ev.target); markSoon(); });
  document.addEventListener("htmx:afterSwap", (ev) => {
    decorate(document);
    markSoon();
    if (ev.target && ev.target.id === "sandbox-pane" || (ev.detail && ev.detail.target && ev.detail.target.id === "sandbox-pane")) runSetupIfReady();
  });
  if (document.readyState !== "loading") { decorate(document); markSoon(); }
  if (document.querySelector(".lesson-layout")) showView(document.querySelector(".lesson-layout").dataset.view || "text");
})();
