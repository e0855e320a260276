// The console: xterm.js on the sandbox's websocket (protocol in ARCHITECTURE.md).
// Binary frames are terminal bytes; text frames are JSON control messages. Output is acked from
// xterm's write callback, so the server pauses when the browser falls behind. Close codes and
// whether to reconnect come from the server's "close" message (sandbox/protocol.py), never from
// a copy here.
// Focus: the terminal takes it only when the learner asks (a click, a run block, the skip link,
// or Start/Reset in the pane), never on page load; Escape then Tab leaves it (xterm keeps Tab).
// Words go through Django's JavaScript catalog (gettext) when the page loads it.
(function () {
  "use strict";
  const encoder = new TextEncoder();
  const gettext = window.gettext || ((text) => text);
  const interpolate = window.interpolate || ((fmt, args) => fmt.replace(/%s/g, () => String(args.shift())));

  // What a state name from the server reads as.
  const STATE_NAMES = {
    stopped: gettext("Sandbox stopped"),
    failed: gettext("Sandbox failed"),
    gone: gettext("Sandbox gone"),
    stopping: gettext("Stopping"),
  };

  // Colours for xterm, one set per prefers-color-scheme (lessons.css has the page's own).
  const THEMES = {
    light: {
      background: "#ffffff", foreground: "#1d232a", cursor: "#1d232a", cursorAccent: "#ffffff",
      selectionBackground: "#b6d4fe", selectionForeground: "#1d232a",
      black: "#24292f", red: "#cf222e", green: "#116329", yellow: "#4d2d00", blue: "#0969da",
      magenta: "#8250df", cyan: "#1b7c83", white: "#6e7781", brightBlack: "#57606a",
      brightRed: "#a40e26", brightGreen: "#1a7f37", brightYellow: "#633c01", brightBlue: "#0550ae",
      brightMagenta: "#6639ba", brightCyan: "#1b7c83", brightWhite: "#8c959f",
    },
    dark: {
      background: "#0f1720", foreground: "#e6edf3", cursor: "#e6edf3", cursorAccent: "#0f1720",
      selectionBackground: "#3b5070", selectionForeground: "#ffffff",
      black: "#484f58", red: "#ff7b72", green: "#3fb950", yellow: "#d29922", blue: "#58a6ff",
      magenta: "#bc8cff", cyan: "#39c5cf", white: "#b1bac4", brightBlack: "#6e7681",
      brightRed: "#ffa198", brightGreen: "#56d364", brightYellow: "#e3b341", brightBlue: "#79c0ff",
      brightMagenta: "#d2a8ff", brightCyan: "#56d4dd", brightWhite: "#ffffff",
    },
  };
  const darkScheme = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  const currentTheme = () => (darkScheme && darkScheme.matches ? THEMES.dark : THEMES.light);

  // Set when the learner pressed a button in the sandbox pane (Start, Reset, Stop): the pane that
  // comes back gets the focus, and a console that attaches then takes it.
  let focusWanted = false;
  const focusIsLost = () => {
    const active = document.activeElement;
    return !active || active === document.body || !active.isConnected;
  };

  function connect(el) {
    if (el.dataset.connected) return;
    el.dataset.connected = "1";
    const status = document.querySelector("[data-console-status]");
    if (status) {
      // A polite live region: screen readers say a new state without interrupting.
      if (!status.hasAttribute("role")) status.setAttribute("role", "status");
      status.setAttribute("aria-live", "polite");
      if (!status.hasAttribute("tabindex")) status.setAttribute("tabindex", "-1");
    }
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
      // Output mirrored into an off-screen list that screen readers read; nothing visible changes.
      screenReaderMode: true,
      theme: currentTheme(),
    });
    if (darkScheme) {
      const follow = () => { term.options.theme = currentTheme(); };
      if (darkScheme.addEventListener) darkScheme.addEventListener("change", follow);
    }
    showKeys(el); // before fitting: the line takes its height from the terminal's
    const fit = new window.FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open(el);
    fit.fit();
    if (term.textarea) term.textarea.setAttribute("aria-describedby", "terminal-keys");
    el.terminal = term; // for tests and the lesson engine's run buttons

    // Leaving the terminal: Escape is held back for a moment; a Tab (or Shift+Tab) right after it
    // is left to the browser, which moves the focus on, and the Escape is dropped. Any other key,
    // or the moment passing, sends the Escape on (vi and less still get it).
    const ESCAPE_HOLD_MS = 800;
    let heldEscape = null;
    const sendHeldEscape = () => {
      if (!heldEscape) return;
      clearTimeout(heldEscape);
      heldEscape = null;
      sendInput(encoder.encode("\x1b"));
    };
    const isModifier = (key) => key === "Shift" || key === "Control" || key === "Alt" || key === "Meta";

    // Copy and paste: Ctrl+Shift+C / Ctrl+Shift+V (Ctrl+C stays the terminal's interrupt).
    term.attachCustomKeyEventHandler((ev) => {
      if (ev.type === "keydown" && ev.key === "Escape" && !ev.ctrlKey && !ev.altKey && !ev.metaKey && !ev.shiftKey) {
        sendHeldEscape(); // a second Escape sends the first
        heldEscape = setTimeout(sendHeldEscape, ESCAPE_HOLD_MS);
        return false;
      }
      if (heldEscape && ev.type === "keydown" && !isModifier(ev.key)) {
        if (ev.key === "Tab" && !ev.ctrlKey && !ev.altKey && !ev.metaKey) {
          clearTimeout(heldEscape);
          heldEscape = null;
          return false; // not handled by xterm: the browser's Tab moves the focus
        }
        sendHeldEscape();
      }
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

    // Two clocks, counted down between updates: the session's end (Extend moves it) and the idle
    // stop (the server starts it again on activity, so every keystroke here starts it again too).
    const clock = { sessionEnds: null, idleEnds: null, idleSeconds: null, ticking: null };
    const mmss = (ms) => {
      const left = Math.max(0, Math.round(ms / 1000));
      return Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
    };
    function showClock() {
      const timer = document.getElementById("sandbox-timer");
      if (!timer) return;
      const now = Date.now();
      const session = timer.querySelector("[data-session-left-label]");
      const idle = timer.querySelector("[data-idle-left-label]");
      if (session && clock.sessionEnds !== null) {
        session.textContent = interpolate(gettext("%s left"), [mmss(clock.sessionEnds - now)]);
      }
      if (idle && clock.idleEnds !== null) {
        idle.textContent = interpolate(gettext("idle stop in %s"), [mmss(clock.idleEnds - now)]);
      }
      const ends = [clock.sessionEnds, clock.idleEnds].filter((t) => t !== null);
      timer.classList.toggle("ending", ends.length > 0 && Math.min(...ends) - now <= 300000);
    }
    function startCountdown(fields) {
      const now = Date.now();
      const at = (seconds) => (seconds === null || seconds === undefined ? null : now + Number(seconds) * 1000);
      clock.sessionEnds = at(fields.session_seconds_left);
      clock.idleEnds = at(fields.idle_seconds_left);
      clock.idleSeconds = fields.idle_seconds ? Number(fields.idle_seconds) : null;
      const timer = document.getElementById("sandbox-timer");
      if (timer) timer.dataset.counting = "1";
      if (clock.ticking) clearInterval(clock.ticking);
      showClock();
      clock.ticking = setInterval(showClock, 1000);
    }
    function activity() {
      if (clock.idleSeconds) clock.idleEnds = Date.now() + clock.idleSeconds * 1000;
    }
    function timerFields(el) {
      return { session_seconds_left: el.dataset.sessionLeft, idle_seconds_left: el.dataset.idleLeft,
               idle_seconds: el.dataset.idleSeconds };
    }
    const timerEl = document.getElementById("sandbox-timer");
    if (timerEl && (timerEl.dataset.sessionLeft || timerEl.dataset.idleLeft)) startCountdown(timerFields(timerEl));
    // The Extend button swaps the timer in place: start counting from its new figures.
    document.addEventListener("htmx:afterSettle", () => {
      const t = document.getElementById("sandbox-timer");
      if (t && !t.dataset.counting && (t.dataset.sessionLeft || t.dataset.idleLeft)) startCountdown(timerFields(t));
    });

    // One websocket at a time. Input typed while it is not attached (connecting, reconnecting,
    // the sandbox still starting) waits in a bounded queue and is sent once the server says
    // "running"; past the bound it is refused, and the status line says so.
    const MAX_QUEUED_INPUT = 4096;
    const queued = [];
    let queuedBytes = 0;
    let attached = false;
    let lastStatus = [gettext("Connecting…"), "state-starting"];
    const show = (text, cls) => { lastStatus = [text, cls]; setStatus(text, cls); };
    const showQueue = () => {
      if (attached) return;
      const [text, cls] = lastStatus;
      setStatus(queuedBytes ? text + " " + interpolate(gettext("(%s typed keys wait)"), [queuedBytes]) : text, cls);
    };

    const sendControl = (data) => {
      if (ws && ws.readyState === WebSocket.OPEN) ws.send(data);
    };
    const sendInput = (bytes) => {
      if (attached && ws && ws.readyState === WebSocket.OPEN) { ws.send(bytes); activity(); return; }
      if (ended) return;
      if (queuedBytes + bytes.length > MAX_QUEUED_INPUT) {
        setStatus(gettext("Not connected: typing is paused until the console is back."), "state-error");
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
    // Re-fit on every layout change, not only a window resize: a banner or notice above the
    // terminal, the one-column layout, zoom, the keys line wrapping. Once per frame at most.
    let fitFrame = 0;
    const refit = () => {
      if (fitFrame) return;
      fitFrame = requestAnimationFrame(() => {
        fitFrame = 0;
        if (!el.isConnected) { // the pane was swapped (Stop, Reset): stop watching the old one
          window.removeEventListener("resize", onWindowResize);
          if (sizeWatcher) sizeWatcher.disconnect();
          return;
        }
        if (el.clientWidth && el.clientHeight) fit.fit();
      });
    };
    const onWindowResize = refit;
    window.addEventListener("resize", onWindowResize);
    const sizeWatcher = window.ResizeObserver ? new ResizeObserver(refit) : null;
    if (sizeWatcher) sizeWatcher.observe(el);

    function refreshPane() {
      window.removeEventListener("resize", onWindowResize);
      if (sizeWatcher) sizeWatcher.disconnect();
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
          show((why.text ? why.text + " " : "") + gettext("Reconnecting when this tab is visible…"), "state-starting");
          document.addEventListener("visibilitychange", () => { if (!document.hidden) open(); }, { once: true });
          return;
        }
        if (left <= 0) { open(); return; }
        show((why.text ? why.text + " " : gettext("Connection lost.") + " ") + interpolate(gettext("Reconnecting in %s s…"), [left]), "state-starting");
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
      show(attempt ? gettext("Reconnecting…") : gettext("Connecting…"), "state-starting");
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
        show(gettext("Connected"), "state-running");
        sendResize();
        flushQueue();
        // Only a learner who asked (Start, Reset) gets the terminal; a page load does not, and
        // neither does a reconnect while they are elsewhere on the page.
        if (focusWanted) {
          const active = document.activeElement;
          if (focusIsLost() || active === status || (active && active.closest && active.closest("#sandbox-pane"))) term.focus();
          focusWanted = false;
        }
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
          show(msg.position ? interpolate(gettext("Waiting for a free sandbox: you are number %s in the queue."), [msg.position])
                            : gettext("Waiting for a free sandbox…"), "state-queued");
          showQueue();
        } else if (msg.type === "state" && msg.state === "starting") {
          waiting = true;
          show(gettext("Starting your sandbox…"), "state-starting");
          showQueue();
        } else if (msg.type === "state" && msg.state === "stopping") {
          show(msg.reason ? STATE_NAMES.stopping + ": " + msg.reason : gettext("Stopping…"), "state-stopping");
        } else if (msg.type === "state") {
          ended = true;
          const name = STATE_NAMES[msg.state] || interpolate(gettext("Sandbox %s"), [msg.state]);
          show(name + (msg.reason ? ": " + msg.reason : ""), "state-" + msg.state);
        } else if (msg.type === "close") {
          closeInfo = msg;
        } else if (msg.type === "timer") {
          startCountdown(msg);
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
        if (ended && clock.ticking) clearInterval(clock.ticking);
        if (ended) {
          refreshPane(); // the sandbox stopped: the pane offers to start it again
          return;
        }
        if (closeInfo && !closeInfo.retry) {
          // Final (not signed in, not yours, not running, flooding): say why; no reconnect.
          show(closeInfo.reason || gettext("Disconnected"), "state-stopped");
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
    // Control taken or given back on the watch page: a new attach carries the new access (an
    // attach's stdin is fixed when it opens), without reloading the page.
    document.body.addEventListener("console-reconnect", () => {
      if (ended) return;
      const old = ws;
      ws = null;
      if (old) old.close();
      open();
    });
  }

  // The keys that matter, shown under the terminal.
  function showKeys(el) {
    if (el.parentNode.querySelector("[data-terminal-keys]")) return;
    const help = document.createElement("p");
    help.className = "terminal-keys";
    help.dataset.terminalKeys = "";
    help.id = "terminal-keys";
    [[gettext("Esc then Tab"), gettext("leave the terminal")],
     [gettext("Ctrl+Shift+C"), gettext("copy")],
     [gettext("Ctrl+Shift+V"), gettext("paste")]].forEach(([keys, what], i) => {
      if (i) help.appendChild(document.createTextNode(" · "));
      const kbd = document.createElement("kbd");
      kbd.textContent = keys;
      help.appendChild(kbd);
      help.appendChild(document.createTextNode(" " + what));
    });
    el.parentNode.insertBefore(help, el.nextSibling);
  }

  // Where the focus goes after the pane is swapped (Start, Reset, Stop, a refresh): only when it
  // was lost with the old pane, to the console's status (the terminal follows once it attaches)
  // or the pane's main button.
  function placeFocusInPane(pane) {
    if (!pane || !focusIsLost()) return;
    const target = pane.querySelector("[data-console-status]") || pane.querySelector("button.primary, button:not([disabled])");
    if (target) {
      if (!target.matches("button, a, input, [tabindex]")) target.setAttribute("tabindex", "-1");
      target.focus();
    }
  }

  // The skip link: the terminal if there is one, else the pane (its Start button).
  function skipToTerminal(ev) {
    const link = ev.target.closest && ev.target.closest("[data-skip-to-terminal]");
    if (!link) return;
    const el = document.getElementById("terminal");
    if (el && el.terminal) {
      ev.preventDefault();
      el.scrollIntoView({ block: "nearest" });
      el.terminal.focus();
      return;
    }
    const pane = document.getElementById("sandbox-pane");
    const button = pane && pane.querySelector("button.primary, button:not([disabled])");
    if (button) { ev.preventDefault(); button.focus(); }
  }

  function scan(root) {
    (root || document).querySelectorAll("[data-console-url]").forEach(connect);
  }
  // Pages load this script at the end of the body: the terminal element is already parsed, so the
  // console connects now rather than after every later script (sendInput exists sooner).
  scan(document);
  document.addEventListener("DOMContentLoaded", () => scan(document));
  document.addEventListener("click", skipToTerminal);
  document.addEventListener("htmx:beforeRequest", (ev) => {
    const elt = ev.detail && ev.detail.elt;
    const target = ev.detail && ev.detail.target;
    if (elt && elt.matches && elt.matches("button") && target && target.id === "sandbox-pane") focusWanted = true;
  });
  document.addEventListener("htmx:afterSettle", (ev) => {
    scan(ev.target.parentNode || document);
    const pane = document.getElementById("sandbox-pane");
    if (pane && (ev.target === pane || ev.target.contains(pane) || (ev.detail && ev.detail.elt === pane))) {
      if (!pane.querySelector("[data-console-url]")) focusWanted = false; // no console to hand it to
      placeFocusInPane(pane);
    } else if (ev.target && ev.target.id === "sandbox-timer" && focusIsLost()) {
      // Extend replaced itself: the focus goes to the new button, or the new time.
      const next = ev.target.querySelector("[data-extend]") || ev.target.querySelector("[data-time-left]");
      if (next) {
        if (!next.matches("button")) next.setAttribute("tabindex", "-1");
        next.focus();
      }
    }
  });
})();
