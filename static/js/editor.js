// The editor tab: CodeMirror 5 on a file of the learner's home, read and saved through the sandbox
// (lessons/editor.py). A save carries the hash the file had when it was opened; when the file
// changed in the sandbox meanwhile the server answers 409 and the learner chooses: reload the
// sandbox's version, or overwrite it with theirs. Nothing is written behind their back.
// Keys: Ctrl+S (Cmd+S) saves; Tab indents; Escape then Tab leaves the editor (as in the terminal).
(function () {
  "use strict";
  const gettext = window.gettext || ((text) => text);
  const interpolate = window.interpolate || ((fmt, args, named) => (named
    ? fmt.replace(/%\((\w+)\)s/g, (_, key) => String(args[key]))
    : fmt.replace(/%s/g, () => String(args.shift()))));
  const ESCAPE_LEAVES_MS = 800;

  // The CodeMirror mode a file's name suggests (only the modes make assets copies).
  function modeFor(path) {
    const name = path.split("/").pop().toLowerCase();
    if (name === "dockerfile" || name.startsWith("dockerfile.") || name.endsWith(".dockerfile")) return "dockerfile";
    if (/\.ya?ml$/.test(name)) return "yaml";
    if (/\.(sh|bash)$/.test(name) || name === ".bashrc" || name === ".profile") return "shell";
    if (name.endsWith(".py")) return "python";
    if (name.endsWith(".json")) return { name: "javascript", json: true };
    if (/\.(js|mjs|cjs)$/.test(name)) return "javascript";
    return null;
  }

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (err) {
      return "";
    }
  }

  function setup(panel) {
    if (panel.dataset.editorReady) return;
    panel.dataset.editorReady = "1";
    const status = panel.querySelector("[data-editor-status]");
    const pathInput = panel.querySelector("#editor-path");
    const fileList = panel.querySelector("#editor-files");
    const saveButton = panel.querySelector("[data-editor-save]");
    const current = panel.querySelector("[data-editor-current]");
    const conflict = panel.querySelector("[data-editor-conflict]");
    const conflictText = panel.querySelector("[data-editor-conflict-text]");
    let file = null; // {path, hash, new} of what the editor holds
    let saved = ""; // the text as last opened or saved: what "unsaved changes" compares with
    let busy = false;
    let escapedAt = 0;

    const say = (text, kind) => {
      status.textContent = text;
      status.className = "editor-status" + (kind ? " " + kind : "");
    };
    const cm = window.CodeMirror(panel.querySelector("[data-editor-area]"), {
      value: "",
      lineNumbers: true,
      indentUnit: 2,
      tabSize: 2,
      indentWithTabs: false,
      readOnly: "nocursor", // until a file is open
      inputStyle: "contenteditable", // what screen readers read best
      screenReaderLabel: gettext("File contents"),
      extraKeys: {
        Esc: () => { escapedAt = Date.now(); },
        Tab: "insertSoftTab",
        "Shift-Tab": "indentLess",
        "Ctrl-S": () => save(false),
        "Cmd-S": () => save(false),
      },
    });
    // A Tab right after Escape is the browser's: CodeMirror ignores it and the focus moves on.
    cm.on("keydown", (_cm, ev) => {
      if (ev.key === "Tab" && Date.now() - escapedAt < ESCAPE_LEAVES_MS) {
        ev.codemirrorIgnore = true;
        escapedAt = 0;
      }
    });
    panel.editor = cm; // for tests
    const input = cm.getInputField();
    input.setAttribute("aria-describedby", "editor-keys");
    input.setAttribute("aria-label", gettext("File contents"));

    const dirty = () => file !== null && cm.getValue() !== saved;
    const showState = () => {
      saveButton.disabled = busy || file === null || !dirty() && !file.new;
      current.textContent = file === null ? "" : file.path + (dirty() ? " • " + gettext("unsaved changes") : "");
    };
    cm.on("change", showState);
    window.addEventListener("beforeunload", (ev) => {
      if (panel.isConnected && dirty()) { ev.preventDefault(); ev.returnValue = ""; }
    });

    async function call(url, options) {
      let response;
      try {
        response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, ...options });
      } catch (err) {
        return { ok: false, status: 0, body: { error: gettext("The site did not answer; check your connection and try again.") } };
      }
      let body = {};
      try { body = await response.json(); } catch (err) { body = { error: interpolate(gettext("The site answered %s."), [response.status]) }; }
      return { ok: response.ok, status: response.status, body };
    }

    async function loadList() {
      const answer = await call(panel.dataset.filesUrl);
      if (!answer.ok) { say(answer.body.error || "", "error"); return; }
      fileList.replaceChildren(...answer.body.files.map((name) => {
        const option = document.createElement("option");
        option.value = name;
        return option;
      }));
      if (!file) {
        say(answer.body.files.length
          ? interpolate(gettext("%s files in your home folder."), [answer.body.files.length])
          : gettext("Your home folder has no files yet: type a name to make one."));
      }
    }

    async function open(path) {
      if (dirty() && !window.confirm(gettext("Your changes to this file are not saved. Open another file anyway?"))) return;
      busy = true;
      showState();
      say(gettext("Opening…"));
      const answer = await call(panel.dataset.fileUrl + "?path=" + encodeURIComponent(path));
      busy = false;
      if (!answer.ok) { say(answer.body.error || "", "error"); showState(); return; }
      file = { path: answer.body.path, hash: answer.body.hash, new: answer.body.new };
      saved = answer.body.text;
      conflict.hidden = true;
      cm.setOption("mode", modeFor(file.path));
      cm.setOption("readOnly", false);
      cm.setValue(saved);
      cm.clearHistory();
      pathInput.value = file.path;
      say(file.new
        ? interpolate(gettext("%s is a new file: it is made when you save."), [file.path])
        : interpolate(gettext("Opened %s."), [file.path]), "ok");
      showState();
      cm.focus();
    }

    async function save(overwrite) {
      if (!file || busy) return;
      busy = true;
      showState();
      say(gettext("Saving…"));
      const answer = await call(panel.dataset.fileUrl, {
        method: "POST",
        headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ path: file.path, text: cm.getValue(), hash: file.hash, overwrite }),
      });
      busy = false;
      if (answer.status === 409 && answer.body.conflict) {
        conflictText.textContent = answer.body.error + " " + gettext("Reload it (your changes here are lost) or overwrite it with yours?");
        conflict.hidden = false;
        say(gettext("Not saved: the file changed in the sandbox."), "error");
        showState();
        conflict.querySelector("[data-editor-reload]").focus();
        return;
      }
      if (!answer.ok) { say(answer.body.error || "", "error"); showState(); return; }
      saved = cm.getValue();
      file = { path: answer.body.path, hash: answer.body.hash, new: false };
      conflict.hidden = true;
      say(interpolate(gettext("Saved %s."), [file.path]), "ok");
      showState();
      loadList();
    }

    panel.querySelector("[data-editor-open]").addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (pathInput.value.trim()) open(pathInput.value.trim());
    });
    saveButton.addEventListener("click", () => save(false));
    conflict.querySelector("[data-editor-overwrite]").addEventListener("click", () => save(true));
    conflict.querySelector("[data-editor-reload]").addEventListener("click", () => {
      saved = cm.getValue(); // the learner chose to drop their changes: no second question
      open(file.path);
    });
    panel.refreshEditor = () => { cm.refresh(); loadList(); };
    showState();
  }

  // Built the first time its tab is shown (CodeMirror measures its box), refreshed every time after.
  document.addEventListener("lesson:view", (ev) => {
    if (ev.detail.view !== "editor") return;
    const panel = document.getElementById("editor-panel");
    if (!panel || !window.CodeMirror) return;
    setup(panel);
    panel.refreshEditor();
  });
})();
