// The instructor's live dashboard. The page embeds a snapshot (JSON); the websocket then pushes
// one compact event per progress change, applied here without asking the server again.
// Activity (console input) and hint reveals come without events: the snapshot is re-read every 30 s.
(function () {
  "use strict";
  const root = document.querySelector("[data-dashboard]");
  if (!root) return;
  const data = JSON.parse(document.getElementById("dashboard-snapshot").textContent);
  // The page's words in the reader's language; {name}-style fields are filled in here.
  const wordsNode = document.getElementById("dashboard-words");
  const words = wordsNode ? JSON.parse(wordsNode.textContent) : {};
  const say = (key, fallback, fields) =>
    (words[key] || fallback).replace(/\{(\w+)\}/g, (m, k) => (fields && k in fields ? String(fields[k]) : m));
  const nameOf = (user) => { const m = data.members.find((x) => String(x.user) === String(user)); return m ? m.name : ""; };
  // Destructive roster forms ask first (the question is on the form, in the reader's language).
  document.addEventListener("submit", (event) => {
    const form = event.target.closest && event.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
  });
  const grid = document.getElementById("progress-grid");
  const status = root.querySelector("[data-live-status]");
  const lastSeen = {}; // user -> ms of their latest progress event or sandbox activity
  const current = {}; // user:lesson -> step slug with the latest activity

  const cellKey = (user, lesson, step) => user + ":" + lesson + ":" + step;
  const csrf = () => (document.cookie.match(/(?:^|; )csrftoken=([^;]+)/) || [])[1] || "";
  const ms = (iso) => (iso ? Date.parse(iso) : 0);
  const seen = (user, iso) => { lastSeen[user] = Math.max(lastSeen[user] || 0, ms(iso)); };

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function computeCurrent() {
    Object.entries(data.cells).forEach(([key, cell]) => {
      const [user, lesson, step] = key.split(":");
      const at = Math.max(ms(cell.opened_at), ms(cell.last_attempt_at));
      seen(user, cell.opened_at); seen(user, cell.last_attempt_at); seen(user, cell.passed_at);
      const k = user + ":" + lesson;
      if (!current[k] || at >= current[k].at) current[k] = { step, at };
    });
    Object.entries(data.sandboxes).forEach(([key, sb]) => seen(key.split(":")[0], sb.at));
  }

  function build() {
    grid.textContent = "";
    const head = el("tr");
    head.appendChild(el("th", { scope: "col" }, say("learner", "Learner")));
    head.appendChild(el("th", { scope: "col" }, say("active", "Active")));
    data.lessons.forEach((lesson) => {
      const lang = lesson.language && lesson.language !== document.documentElement.lang ? { lang: lesson.language } : {};
      head.appendChild(el("th", { scope: "col", class: "lesson-head", ...lang }, lesson.title));
      lesson.steps.forEach((step, i) => head.appendChild(el("th", { scope: "col", title: step.title, ...lang }, String(i + 1))));
    });
    const thead = el("thead"); thead.appendChild(head); grid.appendChild(thead);
    const body = el("tbody");
    data.members.forEach((m) => {
      const row = el("tr", { "data-user": m.user });
      row.appendChild(el("th", { scope: "row" }, m.name));
      row.appendChild(el("td", { "data-activity": m.user }));
      data.lessons.forEach((lesson) => {
        row.appendChild(el("td", { class: "sandbox-cell", "data-sandbox-cell": m.user + ":" + lesson.slug }));
        lesson.steps.forEach((step) => row.appendChild(el("td", { class: "step-cell", "data-cell": cellKey(m.user, lesson.slug, step.slug) })));
      });
      body.appendChild(row);
    });
    grid.appendChild(body);
    data.members.forEach((m) => data.lessons.forEach((lesson) => {
      renderSandbox(m.user, lesson.slug);
      lesson.steps.forEach((step) => renderCell(m.user, lesson.slug, step.slug));
    }));
    renderActivity();
  }

  function renderCell(user, lesson, step) {
    const td = grid.querySelector('[data-cell="' + cellKey(user, lesson, step) + '"]');
    if (!td) return;
    const cell = data.cells[cellKey(user, lesson, step)];
    td.className = "step-cell";
    td.textContent = "";
    td.removeAttribute("title");
    if (!cell) return;
    const cur = current[user + ":" + lesson];
    if (cur && cur.step === step) td.classList.add("current");
    let mark = "●";
    if (cell.passed_at) { td.classList.add("passed"); mark = "✓"; }
    else if (cell.failures) { td.classList.add("failing"); mark = "✗" + cell.failures; }
    else td.classList.add("opened");
    td.appendChild(el("span", { class: "mark" }, mark));
    if (cell.hints_used) td.appendChild(el("span", { class: "help" }, "h" + cell.hints_used));
    if (cell.solution_viewed) td.appendChild(el("span", { class: "help solution" }, "S"));
    const tip = [];
    if (cell.attempts) tip.push(say("attempts", "{attempts} attempt(s), {failures} failed", cell));
    if (cell.feedback && cell.outcome !== "passed") tip.push(say("lastFeedback", "Last feedback: {feedback}", cell));
    if (tip.length) td.title = tip.join("\n");
  }

  function renderSandbox(user, lesson) {
    const td = grid.querySelector('[data-sandbox-cell="' + user + ":" + lesson + '"]');
    if (!td) return;
    td.textContent = "";
    const sb = data.sandboxes[user + ":" + lesson];
    if (!sb) { td.appendChild(el("span", { class: "muted" }, "–")); return; }
    td.appendChild(el("span", { class: "state state-" + sb.state, "data-sandbox-state": sb.state }, say("state_" + sb.state, sb.state)));
    if (sb.state === "running") {
      const watch = el("a", { href: root.dataset.watchUrl.replace("00000000-0000-0000-0000-000000000000", sb.sandbox), class: "watch", "data-watch": user }, say("watch", "watch"));
      td.appendChild(watch);
      const name = { name: nameOf(user) };
      td.appendChild(actionButton("reset", say("reset", "reset"), sb.sandbox,
        say("confirmReset", "Reset the sandbox of {name}? Everything in it is lost; their progress is kept.", name)));
      td.appendChild(actionButton("stop", say("stop", "stop"), sb.sandbox,
        say("confirmStop", "Stop the sandbox of {name}? Their progress is kept.", name)));
    }
  }

  function actionButton(action, label, sandboxId, question) {
    const b = el("button", { class: "small", type: "button", "data-action": action }, label);
    b.addEventListener("click", () => {
      if (!window.confirm(question)) return;
      const base = root.dataset.watchUrl.replace("00000000-0000-0000-0000-000000000000", sandboxId).replace(/watch\/$/, action + "/");
      fetch(base, { method: "POST", headers: { "X-CSRFToken": csrf(), "HX-Request": "true" }, credentials: "same-origin" })
        .then((r) => r.text()).then((html) => { document.getElementById("action-result").innerHTML = html; });
    });
    return b;
  }

  function renderActivity() {
    const now = Date.now();
    data.members.forEach((m) => {
      const td = grid.querySelector('[data-activity="' + m.user + '"]');
      if (!td) return;
      const last = lastSeen[m.user] || 0;
      const idle = !last || now - last > data.idle_seconds * 1000;
      td.textContent = idle ? say("idle", "idle") : say("activeNow", "active");
      td.className = idle ? "idle" : "active";
    });
  }

  function apply(ev) {
    const key = cellKey(ev.user, ev.lesson, ev.step);
    if (ev.kind === "progress") {
      const cell = data.cells[key] || { attempts: 0, failures: 0, feedback: "", outcome: "", last_attempt_at: null };
      Object.assign(cell, { opened_at: ev.opened_at, passed_at: ev.passed_at, hints_used: ev.hints_used, solution_viewed: ev.solution_viewed });
      data.cells[key] = cell;
      seen(ev.user, ev.opened_at); seen(ev.user, ev.passed_at);
      const k = ev.user + ":" + ev.lesson;
      const at = Math.max(ms(ev.opened_at), Date.now() - 1);
      if (!ev.passed_at || !current[k]) current[k] = { step: ev.step, at };
    } else if (ev.kind === "attempt") {
      const cell = data.cells[key] || { opened_at: ev.at, passed_at: null, hints_used: 0, solution_viewed: false, attempts: 0, failures: 0 };
      // "error": Check pressed with no running sandbox (or the engine failed): the check never
      // ran, so it is no attempt and no failure (as in the snapshot).
      if (ev.outcome !== "error") {
        cell.attempts += 1;
        if (ev.outcome !== "passed") cell.failures += 1;
        cell.outcome = ev.outcome; cell.feedback = ev.feedback;
      }
      cell.last_attempt_at = ev.at;
      data.cells[key] = cell;
      seen(ev.user, ev.at);
      current[ev.user + ":" + ev.lesson] = { step: ev.step, at: ms(ev.at) };
    } else if (ev.kind === "sandbox") {
      data.sandboxes[ev.user + ":" + ev.lesson] = { sandbox: ev.sandbox, state: ev.state, at: ev.at };
      seen(ev.user, ev.at);
      renderSandbox(ev.user, ev.lesson);
      renderActivity();
      return;
    } else return;
    const lesson = data.lessons.find((l) => l.slug === ev.lesson);
    if (lesson) lesson.steps.forEach((s) => renderCell(ev.user, ev.lesson, s.slug));
    renderActivity();
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + root.dataset.wsUrl);
    ws.onopen = () => { status.textContent = say("live", "live"); status.className = "state state-running"; };
    ws.onmessage = (msg) => {
      let ev; try { ev = JSON.parse(msg.data); } catch (e) { return; }
      if (ev.kind === "hello" || ev.kind === "ended") return;
      // A learner removed or a lesson unassigned: the grid's rows or columns changed.
      if (ev.kind === "roster") return refresh();
      if (!data.members.some((m) => String(m.user) === String(ev.user))) {
        // Someone new joined: the snapshot does not know them; fetch it again (rare).
        return refresh();
      }
      apply(ev);
    };
    ws.onclose = (ev) => {
      status.textContent = say("reconnecting", "reconnecting…"); status.className = "state state-starting";
      // 4409: the class has ended (the results stay); 4403: no longer its instructor. Final.
      if (ev.code === 4409) { status.textContent = say("ended", "class ended"); return; }
      if (ev.code >= 4400 && ev.code < 4500) { status.textContent = say("notAllowed", "not allowed"); return; }
      // Reconnect and re-read the snapshot: events sent while disconnected are not replayed.
      setTimeout(() => refresh().then(connect, connect), 2000);
    };
  }

  function refresh() {
    // Console input and hint reveals are recorded without a saved row (no event): re-read the
    // snapshot now and then (a fixed handful of queries, whatever the class size).
    return fetch(location.pathname + "snapshot.json", { credentials: "same-origin" })
      .then((r) => r.json()).then((fresh) => { Object.assign(data, fresh); computeCurrent(); build(); });
  }

  computeCurrent();
  build();
  connect();
  setInterval(() => refresh().catch(() => {}), 30000);
  setInterval(renderActivity, 15000);
  window.classroomDashboard = { data, apply }; // for tests
})();
