// The console: xterm.js on the sandbox's websocket (protocol in ARCHITECTURE.md).
// Binary frames are terminal bytes; text frames are JSON control messages. Output is acked from
// xterm's write callback, so the server pauses when the browser falls behind. Close codes and
// whether to reconnect come from the server's "close" message (sandbox/protocol.py), never from
// a copy here.
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
      // At a line height of 1 the DOM renderer clips the underscore below the cell with common
      // monospace fonts: `echo A_B` showed as "A B".
      lineHeight: 1.2,
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

    // One websocket at a time. Input typed while it is not attached (connecting, reconnecting,
    // the sandbox still starting) waits in a bounded queue and is sent once the server says
    // "running"; past the bound it is refused, and the status line says so.
    const MAX_QUEUED_INPUT = 4096;
    const queued = [];
    let queuedBytes = 0;
    let attached = false;
    let lastStatus = ["Connecting…", "state-starting"];
    const show = (text, cls) => { lastStatus = [text, cls]; setStatus(text, cls); };
    const showQueue = () => {
      if (attached) return;
      const [text, cls] = lastStatus;
      setStatus(queuedBytes ? text + " (" + queuedBytes + " typed keys wait)" : text, cls);
    };

    const sendControl = (data) => {
      if (ws && ws.readyState === WebSocket.OPEN) ws.send(data);
    };
    const sendInput = (bytes) => {
      if (attached && ws && ws.readyState === WebSocket.OPEN) { ws.send(bytes); return; }
      if (ended) return;
      if (queuedBytes + bytes.length > MAX_QUEUED_INPUT) {
        setStatus("Not connected: typing is paused until the console is back.", "state-error");
        return;
      }
      queued.push(bytes);
      queuedBytes += bytes.length;
      showQueue();
    };
    const flushQueue = () => {
      while (queued.length && attached && ws && ws.readyState === WebSocket.OPEN) ws.send(queued.shift());
      queuedBytes = queued.reduce((n, b) => n + b.length, 0);
    };
    const sendResize = () => sendControl(JSON.stringify({ type: "resize", cols: term.cols, rows: term.rows }));
    el.sendInput = (text) => sendInput(encoder.encode(text));

    term.onData((data) => sendInput(encoder.encode(data)));
    term.onBinary((data) => {
      const bytes = new Uint8Array(data.length);
      for (let i = 0; i < data.length; i++) bytes[i] = data.charCodeAt(i) & 0xff;
      sendInput(bytes);
    });
    term.onResize(sendResize);
    const onWindowResize = () => fit.fit();
    window.addEventListener("resize", onWindowResize);

    function refreshPane() {
      window.removeEventListener("resize", onWindowResize);
      const url = el.dataset.paneUrl;
      if (url && window.htmx) window.htmx.ajax("GET", url, { target: "#sandbox-pane", swap: "outerHTML" });
    }

    // Reconnecting: exponential backoff with jitter (0.5 s doubling to 30 s, each wait a random
    // 50-100% of that), reset only once a connection has stayed attached for a while, so a
    // console that keeps dropping never becomes a tight loop.
    let attempt = 0;
    let attachedAt = 0;
    let retryTimer = null;
    function scheduleReconnect(why) {
      if (attachedAt && Date.now() - attachedAt > 10000) attempt = 0;
      attachedAt = 0;
      const ceiling = Math.min(30000, 500 * 2 ** attempt);
      attempt = Math.min(attempt + 1, 10);
      let left = Math.ceil((ceiling * (0.5 + Math.random() / 2)) / 1000);
      const tick = () => {
        if (document.hidden && why.hidden) {
          show((why.text ? why.text + " " : "") + "Reconnecting when this tab is visible…", "state-starting");
          document.addEventListener("visibilitychange", () => { if (!document.hidden) open(); }, { once: true });
          return;
        }
        if (left <= 0) { open(); return; }
        show((why.text ? why.text + " " : "Connection lost. ") + "Reconnecting in " + left + " s…", "state-starting");
        showQueue();
        left -= 1;
        retryTimer = setTimeout(tick, 1000);
      };
      tick();
    }

    function open() {
      if (retryTimer) { clearTimeout(retryTimer); retryTimer = null; }
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      const sock = new WebSocket(scheme + location.host + el.dataset.consoleUrl);
      ws = sock;
      attached = false;
      let closeInfo = null; // the server's "close" message, sent right before it closes
      sock.binaryType = "arraybuffer";
      // A handshake that hangs (a proxy, a server process stopping) must not stall the retries:
      // closing a connecting socket fires onclose, which schedules the next attempt.
      const handshake = setTimeout(() => { if (sock.readyState === WebSocket.CONNECTING) sock.close(); }, 10000);
      show(attempt ? "Reconnecting…" : "Connecting…", "state-starting");
      showQueue();
      sock.onopen = () => {
        clearTimeout(handshake);
        sendResize();
      };
      const attachedNow = () => {
        // The server replays the recent screen right after "running": until then the old screen
        // stays visible (a refused attempt does not blank it).
        term.reset();
        attached = true;
        attachedAt = Date.now();
        waiting = false;
        show("Connected", "state-running");
        sendResize();
        flushQueue();
        term.focus();
      };
      sock.onmessage = (ev) => {
        if (sock !== ws) return;
        if (typeof ev.data !== "string") {
          const bytes = new Uint8Array(ev.data);
          // Acks belong to the connection that sent the bytes (its window), never a newer one.
          term.write(bytes, () => { if (sock === ws && sock.readyState === WebSocket.OPEN) sock.send(JSON.stringify({ type: "ack", bytes: bytes.length })); });
          return;
        }
        let msg;
        try { msg = JSON.parse(ev.data); } catch (e) { return; }
        if (msg.type === "state" && msg.state === "running") {
          if (!attached) attachedNow();
        } else if (msg.type === "state" && msg.state === "queued") {
          waiting = true;
          show(msg.position ? "Waiting for a free sandbox: you are number " + msg.position + " in the queue."
                            : "Waiting for a free sandbox…", "state-queued");
          showQueue();
        } else if (msg.type === "state" && msg.state === "starting") {
          waiting = true;
          show("Starting your sandbox…", "state-starting");
          showQueue();
        } else if (msg.type === "state" && msg.state === "stopping") {
          show("Stopping" + (msg.reason ? ": " + msg.reason : "…"), "state-stopping");
        } else if (msg.type === "state") {
          ended = true;
          show("Sandbox " + msg.state + (msg.reason ? ": " + msg.reason : ""), "state-" + msg.state);
        } else if (msg.type === "close") {
          closeInfo = msg;
        } else if (msg.type === "timer") {
          startCountdown(msg.seconds_left);
        } else if (msg.type === "error") {
          setStatus(msg.message, "state-error");
        } else if (msg.type === "notice") {
          const box = document.getElementById("console-notice");
          if (box) { box.textContent = msg.message; box.hidden = false; }
        }
      };
      sock.onclose = () => {
        clearTimeout(handshake);
        if (sock !== ws) return;
        attached = false;
        if (countdown && ended) clearInterval(countdown);
        if (ended) {
          refreshPane(); // the sandbox stopped: the pane offers to start it again
          return;
        }
        if (closeInfo && !closeInfo.retry) {
          // Final (not signed in, not yours, not running, flooding): say why; no reconnect.
          show(closeInfo.reason || "Disconnected", "state-stopped");
          queued.length = 0; queuedBytes = 0;
          // The pane shows the sandbox's state now; at most once a minute, since a pane that
          // renders a console that is refused again would otherwise loop.
          if (Date.now() - (window.consolePaneRefreshedAt || 0) > 60000) {
            window.consolePaneRefreshedAt = Date.now();
            refreshPane();
          }
          return;
        }
        // The server asked us to come back (engine down, too many consoles, fell behind), or the
        // connection dropped (network, a server process restarting): the shell lives on.
        const fellBehind = closeInfo && closeInfo.code === 4408;
        scheduleReconnect({ text: closeInfo ? closeInfo.reason : "", hidden: fellBehind });
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
