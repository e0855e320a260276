// Lesson page behaviour: click-to-run and copy buttons on code blocks, and the step's setup once
// the sandbox is running. Check, Hint and Solution are plain htmx (see templates/lessons/).
(function () {
  "use strict";

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
        button.textContent = "▶ Run";
        button.title = "Type this into your terminal";
        const run = () => {
          const term = terminal();
          if (!term) { flash(button, "Start your sandbox first"); return; }
          term.sendInput(command + "\n");
          if (term.terminal) term.terminal.focus();
        };
        button.addEventListener("click", run);
        // Clicking the block runs it too, unless the learner is selecting text to copy.
        pre.addEventListener("click", () => { if (!String(window.getSelection() || "")) run(); });
        pre.classList.add("runnable");
      } else {
        button.textContent = "Copy";
        button.addEventListener("click", () => {
          if (navigator.clipboard) navigator.clipboard.writeText(command).then(() => flash(button, "Copied"));
        });
      }
      pre.parentNode.insertBefore(button, pre.nextSibling);
    });
  }

  // The step's setup runs once the sandbox is up (the server makes it idempotent per sandbox).
  function runSetupIfReady() {
    const layout = document.querySelector(".lesson-layout[data-setup-url]");
    const pane = document.getElementById("sandbox-pane");
    if (!layout || !pane || pane.dataset.state !== "running" || !window.htmx) return;
    window.htmx.ajax("POST", layout.dataset.setupUrl, { swap: "none" });
  }

  document.addEventListener("DOMContentLoaded", () => decorate(document));
  document.body && document.body.addEventListener("htmx:load", (ev) => decorate(ev.target));
  document.addEventListener("htmx:afterSwap", (ev) => {
    decorate(document);
    if (ev.target && ev.target.id === "sandbox-pane" || (ev.detail && ev.detail.target && ev.detail.target.id === "sandbox-pane")) runSetupIfReady();
  });
  if (document.readyState !== "loading") decorate(document);
})();
