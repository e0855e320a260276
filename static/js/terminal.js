// The console: xterm.js on the sandbox's websocket (protocol in ARCHITECTURE.md).
// Binary frames are terminal bytes; text frames are JSON control messages. Output is acked from
// xterm's write callback, so the server pauses when the browser falls behind.
(function () {
  "use strict";
  const encoder = new TextEncoder();

  function connect(el) {
    if (el.dataset.connected) return;
    el.dataset.connected = "1";
    const status = document.querySelector("[data-console-status]");
    const setStatus = (text, cls) => {
      if (!status) return;
      status.textContent = text;
      status.className = "state " + (cls || "");
    };
    const term = new window.Terminal({
      cursorBlink: true,
      convertEol: false,
      fontFamily: "ui-monospace, 'DejaVu Sans Mono', Menlo, monospace",
      fontSize: 14,
      scrollback: 5000,
    });
    const fit = new window.FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open(el);
    fit.fit();
    el.terminal = term; // for tests and the lesson engine's run buttons

    // Copy and paste: Ctrl+Shift+C / Ctrl+Shift+V (Ctrl+C stays the terminal's interrupt).
    term.attachCustomKeyEventHandler((ev) => {
      if (ev.type === "keydown" && ev.ctrlKey && ev.shiftKey && ev.code === "KeyC") {
        const text = term.getSelection();
        if (text && navigator.clipboard) navigator.clipboard.writeText(text);
        return false;
      }
      if (ev.type === "keydown" && ev.ctrlKey && ev.shiftKey && ev.code === "KeyV") {
        if (navigator.clipboard) navigator.clipboard.readText().then((t) => term.paste(t));
        return false;
      }
      return true;
    });

    let ws = null;
    let ended = false;
    let retry = 0;

    const send = (data) => {
      if (ws && ws.readyState === WebSocket.OPEN) ws.send(data);
    };
    const sendResize = () => send(JSON.stringify({ type: "resize", cols: term.cols, rows: term.rows }));
    el.sendInput = (text) => send(encoder.encode(text));

    term.onData((data) => send(encoder.encode(data)));
    term.onBinary((data) => {
      const bytes = new Uint8Array(data.length);
      for (let i = 0; i < data.length; i++) bytes[i] = data.charCodeAt(i) & 0xff;
      send(bytes);
    });
    term.onResize(sendResize);
    const onWindowResize = () => fit.fit();
    window.addEventListener("resize", onWindowResize);

    function refreshPane() {
      window.removeEventListener("resize", onWindowResize);
      const url = el.dataset.paneUrl;
      if (url && window.htmx) window.htmx.ajax("GET", url, { target: "#sandbox-pane", swap: "outerHTML" });
    }

    function open() {
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      ws = new WebSocket(scheme + location.host + el.dataset.consoleUrl);
      ws.binaryType = "arraybuffer";
      ws.onopen = () => {
        retry = 0;
        setStatus("Connected", "state-running");
        term.reset(); // the server replays the recent screen on every attach
        sendResize();
        term.focus();
      };
      ws.onmessage = (ev) => {
        if (typeof ev.data !== "string") {
          const bytes = new Uint8Array(ev.data);
          term.write(bytes, () => send(JSON.stringify({ type: "ack", bytes: bytes.length })));
          return;
        }
        let msg;
        try { msg = JSON.parse(ev.data); } catch (e) { return; }
        if (msg.type === "state" && msg.state !== "running") {
          ended = true;
          setStatus("Sandbox " + msg.state + (msg.reason ? ": " + msg.reason : ""), "state-" + msg.state);
        } else if (msg.type === "error") {
          setStatus(msg.message, "state-error");
        } else if (msg.type === "notice") {
          const box = document.getElementById("console-notice");
          if (box) { box.textContent = msg.message; box.hidden = false; }
        }
      };
      ws.onclose = (ev) => {
        if (ended || (ev.code >= 4400 && ev.code < 4500) || ev.code === 1000) {
          setStatus("Disconnected", "state-stopped");
          refreshPane();
          return;
        }
        // A dropped connection (network, server restart): the shell lives on; reattach.
        retry = Math.min(retry + 1, 6);
        setStatus("Connection lost, reconnecting…", "state-starting");
        setTimeout(open, 250 * 2 ** retry);
      };
    }
    open();
  }

  function scan(root) {
    (root || document).querySelectorAll("[data-console-url]").forEach(connect);
  }
  document.addEventListener("DOMContentLoaded", () => scan(document));
  document.addEventListener("htmx:afterSettle", (ev) => scan(ev.target.parentNode || document));
})();
