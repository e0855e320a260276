// The instructor's watch grid: one small read-only terminal per learner's sandbox, each on the
// console websocket (protocol in ARCHITECTURE.md) as a read-only viewer: it never sends input, only
// acks of the output it drew (the server's flow control counts them) and its size once attached.
// The server never applies a read-only viewer's size while the learner's tab is open: it redraws
// the learner's screen (prompt included) at the size that tab tells it. Only with no tab open does
// it redraw at the tile's size (the learner's page sets its own on reconnect).
// Cost stays bounded: a tile is connected only while it is on screen and the tab is visible; a
// tile that scrolls away, or a hidden tab, closes its websocket (and so its engine attach and its
// console slot). Close codes and whether to retry come from the server's "close" message.
(function () {
  "use strict";
  const gettext = window.gettext || ((text) => text);
  const tiles = [];

  const dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  const THEME = dark
    ? { background: "#0f1720", foreground: "#e6edf3", cursor: "#e6edf3" }
    : { background: "#ffffff", foreground: "#1d232a", cursor: "#1d232a" };

  function makeTile(el) {
    const tile = {
      el,
      status: el.closest("[data-watch-tile]").querySelector("[data-tile-status]"),
      term: null,
      ws: null,
      wanted: false, // on screen and the tab visible
      final: false, // the server said not to come back (not allowed, sandbox ended)
      attempt: 0,
      retryTimer: null,
      drawn: false,
    };
    const show = (text, cls) => {
      tile.status.textContent = text;
      tile.status.className = "state " + (cls || "");
    };

    function terminal() {
      if (tile.term) return tile.term;
      const term = new window.Terminal({
        disableStdin: true, cursorBlink: false, cursorStyle: "underline", fontSize: 11, lineHeight: 1.2,
        cols: 80, rows: 14, scrollback: 500, theme: THEME,
        fontFamily: "ui-monospace, 'DejaVu Sans Mono', Menlo, monospace",
      });
      term.open(el);
      // Read-only: the tile is never a place to type, so its input box is out of the tab order;
      // the tile's "open" link is the way in.
      if (term.textarea) { term.textarea.tabIndex = -1; term.textarea.setAttribute("aria-hidden", "true"); }
      tile.term = term;
      el.terminal = term; // for tests
      return term;
    }

    function open() {
      if (tile.ws || tile.final || !tile.wanted) return;
      clearTimeout(tile.retryTimer);
      tile.retryTimer = null;
      const term = terminal();
      const scheme = location.protocol === "https:" ? "wss://" : "ws://";
      const sock = new WebSocket(scheme + location.host + el.dataset.tileConsoleUrl);
      sock.binaryType = "arraybuffer";
      tile.ws = sock;
      let closeInfo = null;
      show(gettext("Connecting…"), "state-starting");
      sock.onmessage = (ev) => {
        if (sock !== tile.ws) return;
        if (typeof ev.data !== "string") {
          const bytes = new Uint8Array(ev.data);
          term.write(bytes, () => {
            if (sock.readyState === WebSocket.OPEN) sock.send(JSON.stringify({ type: "ack", bytes: bytes.length }));
          });
          return;
        }
        let msg;
        try { msg = JSON.parse(ev.data); } catch (e) { return; }
        if (msg.type === "state" && msg.state === "running") {
          // The server replays the recent screen after "running": start from a clean one.
          term.reset();
          tile.attempt = 0;
          sock.send(JSON.stringify({ type: "resize", cols: term.cols, rows: term.rows }));
          show(gettext("Connected"), "state-running");
        } else if (msg.type === "state" && (msg.state === "queued" || msg.state === "starting")) {
          show(gettext("Starting…"), "state-starting");
        } else if (msg.type === "state" && msg.state === "stopping") {
          show(gettext("Stopping…"), "state-stopping");
        } else if (msg.type === "state") {
          tile.final = true;
          show(gettext("Sandbox stopped"), "state-stopped");
        } else if (msg.type === "close") {
          closeInfo = msg;
        } else if (msg.type === "error") {
          show(msg.message, "state-error");
        }
      };
      sock.onclose = () => {
        if (sock !== tile.ws) return;
        tile.ws = null;
        if (closeInfo && !closeInfo.retry) {
          tile.final = true;
          if (closeInfo.reason) show(closeInfo.reason, "state-stopped");
          return;
        }
        if (tile.final) return;
        if (!tile.wanted) { show(gettext("Not connected (off screen)"), ""); return; }
        // Backoff with jitter (0.5 s doubling to 30 s), never a tight loop; a retried close
        // (too many consoles, engine down) says why meanwhile.
        const ceiling = Math.min(30000, 500 * 2 ** tile.attempt);
        tile.attempt = Math.min(tile.attempt + 1, 10);
        show((closeInfo && closeInfo.reason ? closeInfo.reason + " " : "") + gettext("Reconnecting…"), "state-starting");
        tile.retryTimer = setTimeout(open, ceiling * (0.5 + Math.random() / 2));
      };
    }

    function close() {
      clearTimeout(tile.retryTimer);
      tile.retryTimer = null;
      const sock = tile.ws;
      tile.ws = null;
      if (sock) sock.close();
      if (!tile.final) show(gettext("Not connected (off screen)"), "");
    }

    tile.want = (wanted) => {
      if (wanted === tile.wanted) return;
      tile.wanted = wanted;
      if (wanted) open(); else close();
    };
    tile.onScreen = false;
    return tile;
  }

  const wantedNow = (tile) => tile.onScreen && !document.hidden;
  const update = () => tiles.forEach((tile) => tile.want(wantedNow(tile)));

  document.querySelectorAll("[data-tile-console-url]").forEach((el) => {
    const tile = makeTile(el);
    tiles.push(tile);
    el.tile = tile;
  });
  if (window.IntersectionObserver) {
    const observer = new IntersectionObserver((entries) => {
      entries.forEach((entry) => { entry.target.tile.onScreen = entry.isIntersecting; });
      update();
    });
    tiles.forEach((tile) => observer.observe(tile.el));
  } else {
    tiles.forEach((tile) => { tile.onScreen = true; });
    update();
  }
  document.addEventListener("visibilitychange", update);
  window.addEventListener("pagehide", () => tiles.forEach((tile) => tile.want(false)));
  // For tests: how many tiles hold a websocket now.
  window.watchGrid = { open: () => tiles.filter((tile) => tile.ws).length, tiles };
})();
