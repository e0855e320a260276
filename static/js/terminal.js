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
    let waiting = false; // the sandbox is queued or starting: the server attaches when it runs
    let retry = 0;

    // Time left (time to live or inactivity, whichever is first), counted down between updates.
    let countdown = null;
    function startCountdown(seconds) {
      if (countdown) clearInterval(countdown);
      const timer = document.getElementById("sandbox-timer");
      const label = timer && timer.querySelector("[data-time-left]");
      if (!label || seconds === null || seconds === undefined) return;
      timer.dataset.counting = "1";
      const endsAt = Date.now() + seconds * 1000;
      const show = () => {
        const left = Math.max(0, Math.round((endsAt - Date.now()) / 1000));
        const m = Math.floor(left / 60), s = left % 60;
        label.textContent = m + ":" + String(s).padStart(2, "0") + " left";
        timer.classList.toggle("ending", left <= 300);
      };
      show();
      countdown = setInterval(show, 1000);
    }
    const timerEl = document.getElementById("sandbox-timer");
    if (timerEl && timerEl.dataset.secondsLeft) startCountdown(Number(timerEl.dataset.secondsLeft));
    // The Extend button swaps the timer in place: start counting from its new figure.
    document.addEventListener("htmx:afterSettle", () => {
      const t = document.getElementById("sandbox-timer");
      if (t && t.dataset.secondsLeft && !t.dataset.counting) startCountdown(Number(t.dataset.secondsLeft));
    });

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
        if (msg.type === "state" && msg.state === "running") {
          if (waiting) { waiting = false; setStatus("Connected", "state-running"); sendResize(); term.focus(); }
        } else if (msg.type === "state" && msg.state === "queued") {
          waiting = true;
          setStatus(msg.position ? "Waiting for a free sandbox: you are number " + msg.position + " in the queue."
                                 : "Waiting for a free sandbox…", "state-queued");
        } else if (msg.type === "state" && msg.state === "starting") {
          waiting = true;
          setStatus("Starting your sandbox…", "state-starting");
        } else if (msg.type === "state" && msg.state === "stopping") {
          setStatus("Stopping" + (msg.reason ? ": " + msg.reason : "…"), "state-stopping");
        } else if (msg.type === "state") {
          ended = true;
          setStatus("Sandbox " + msg.state + (msg.reason ? ": " + msg.reason : ""), "state-" + msg.state);
        } else if (msg.type === "timer") {
          startCountdown(msg.seconds_left);
        } else if (msg.type === "error") {
          setStatus(msg.message, "state-error");
        } else if (msg.type === "notice") {
          const box = document.getElementById("console-notice");
          if (box) { box.textContent = msg.message; box.hidden = false; }
        }
      };
      ws.onclose = (ev) => {
        if (countdown && ended) clearInterval(countdown);
        if (ended || (ev.code >= 4400 && ev.code < 4500) || ev.code === 1000) {
          setStatus("Disconnected", "state-stopped");
          refreshPane();
          return;
        }
        // A dropped connection (network, server restart) or an engine that does not answer now
        // (4503): the shell lives on, or comes back with the engine; reattach.
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
