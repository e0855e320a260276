"""Watch grid benchmark: a real site, real sandboxes, Debian's Chromium.

N learners (each a running sandbox, typing through their own console websocket) and their
instructor's watch grid in the browser. Measured, with the single-learner watch page as the
baseline in the same run:

- ``connect_ms``: page load -> every terminal on the page says Connected (grid: N tiles; baseline:
  the watch page's one terminal);
- ``prompt_ms``: page load -> each terminal shows its idle learner's prompt on the cursor's line
  (no replay holds it: each watcher asks the learner's console for its size and redraws); one
  value per terminal. A learner's console grants one redraw every 2 s, so a learner whose screen
  was redrawn for the previous page less than 2 s before waits for the end of that pause;
- ``echo_ms``: a learner's keystrokes sent -> their output drawn in the instructor's page (grid:
  each learner in turn, in their own tile; baseline: the watch page);
- ``consoles_open``: websockets the grid holds with every tile on screen, then in a window so
  small that one tile fits (the rest scrolled away), which is the grid's bound on its cost.

    .venv/bin/python bench/watch_grid.py --json [--learners 6] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import aiohttp

from _site import percentile, running_site, session_cookie

LESSON = "what-is-a-container"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]

# Runs in the page: resolves with Date.now() once `text` is drawn inside `selector`.
_DRAWN_AT = """([selector, text]) => new Promise((resolve, reject) => {
  const give_up = Date.now() + 20000;
  const look = () => {
    const el = document.querySelector(selector);
    if (el && el.textContent.includes(text)) return resolve(Date.now());
    if (Date.now() > give_up) return reject(new Error("never drawn: " + text));
    requestAnimationFrame(look);
  };
  look();
})"""
# Runs in the page: resolves, once every terminal's cursor line has shown a prompt, with the time
# (performance.now(): ms since the page's navigation began) each first did.
_PROMPTS_AT = """(selector) => new Promise((resolve, reject) => {
  const give_up = performance.now() + 20000;
  const seen = new Map();
  const prompt = (term) => {
    const buffer = term.buffer.active;
    const line = buffer.getLine(buffer.baseY + buffer.cursorY);
    return line && line.translateToString(true).includes("$");
  };
  const look = () => {
    const all = [...document.querySelectorAll(selector)].map((el) => el.terminal);
    all.forEach((term, i) => { if (term && !seen.has(i) && prompt(term)) seen.set(i, performance.now()); });
    if (all.length && seen.size === all.length) return resolve([...seen.values()]);
    if (performance.now() > give_up) return reject(new Error("no prompt in every terminal"));
    setTimeout(look, 10);
  };
  look();
})"""
_ALL_CONNECTED = """(selector) => new Promise((resolve) => {
  const look = () => {
    const all = [...document.querySelectorAll(selector)];
    if (all.length && all.every((el) => el.textContent === "Connected")) return resolve(performance.now());
    setTimeout(look, 10);
  };
  look();
})"""


async def _class(base_url: str, learners: int):
    """The instructor's cookie, the classroom, and each learner's (sandbox id, cookie)."""
    from asgiref.sync import sync_to_async
    from django.contrib.auth import get_user_model

    from classroom import roster as classroom_roster
    from sandbox import services

    teacher_cookie = await session_cookie("bench-teacher")
    teacher = await get_user_model().objects.aget(username="bench-teacher")
    await sync_to_async(classroom_roster.grant_instructor)(teacher)
    room = await sync_to_async(classroom_roster.create_classroom)(teacher, "Bench class", [LESSON])
    people = []
    for i in range(learners):
        cookie = await session_cookie(f"bench-learner-{i}")
        user = await get_user_model().objects.aget(username=f"bench-learner-{i}")
        await sync_to_async(classroom_roster.join)(room, user, f"Learner {i:02d}")
        sandbox = await services.start_sandbox(user, LESSON, "plain", "base")
        people.append((str(sandbox.id), cookie))
    return teacher_cookie, room.pk, people


async def _typist(base_url: str, sandbox_id: str, cookie: dict):
    """A learner's own console (full access), for typing."""
    http = aiohttp.ClientSession(cookies=cookie, cookie_jar=aiohttp.CookieJar(unsafe=True))
    ws = await asyncio.wait_for(http.ws_connect(
        base_url.replace("http", "ws", 1) + f"/ws/sandboxes/{sandbox_id}/console/", origin=base_url), 10)

    async def drain():
        async for message in ws:
            if message.type == aiohttp.WSMsgType.BINARY:
                await ws.send_str(json.dumps({"type": "ack", "bytes": len(message.data)}))
            elif message.type == aiohttp.WSMsgType.TEXT and json.loads(message.data) == {"type": "state", "state": "running"}:
                # Its size, as a learner's page says it once attached (a watcher redraws at it).
                await ws.send_str(json.dumps({"type": "resize", "cols": 100, "rows": 30}))

    reader = asyncio.create_task(drain())
    return http, ws, reader


async def _echo_ms(page, ws, selector: str, marker: str, value: int) -> float:
    """Type `echo <marker>-$((value))` on the learner's console; ms until the output is drawn."""
    drawn = asyncio.ensure_future(page.evaluate(_DRAWN_AT, [selector, f"{marker}-{value * 3}"]))
    await asyncio.sleep(0.05)  # the page is looking before the keys go
    sent = time.time() * 1000
    await ws.send_bytes(f"echo {marker}-$(({value}*3))\r".encode())
    return await drawn - sent


async def main(learners: int, rounds: int) -> dict:
    from playwright.async_api import async_playwright

    async with running_site() as (base_url, _pid):
        teacher_cookie, room, people = await _class(base_url, learners)
        typists = [await _typist(base_url, sandbox_id, cookie) for sandbox_id, cookie in people]
        host = base_url.split("//", 1)[1].split(":")[0]
        cookies = [{"name": k, "value": v, "domain": host, "path": "/"} for k, v in teacher_cookie.items()]
        grid_connect, watch_connect, grid_echo, watch_echo = [], [], [], []
        grid_prompt, watch_prompt = [], []
        open_on_screen = open_scrolled = None
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            context = await browser.new_context(viewport={"width": 1600, "height": 2400})
            await context.add_cookies(cookies)
            page = await context.new_page()
            for r in range(rounds):
                # Baseline: the watch page of one learner.
                started = time.perf_counter()
                await page.goto(f"{base_url}/classrooms/{room}/sandboxes/{people[0][0]}/watch/")
                await page.evaluate(_ALL_CONNECTED, "[data-console-status]")
                watch_connect.append((time.perf_counter() - started) * 1000)
                watch_prompt += await page.evaluate(_PROMPTS_AT, "#terminal")
                watch_echo.append(await _echo_ms(page, typists[0][1], "#terminal .xterm-rows", f"w{r}", 7 + r))
                # The grid with every learner.
                started = time.perf_counter()
                await page.goto(f"{base_url}/classrooms/{room}/grid/")
                await page.evaluate(_ALL_CONNECTED, "[data-tile-status]")
                grid_connect.append((time.perf_counter() - started) * 1000)
                grid_prompt += await page.evaluate(_PROMPTS_AT, "[data-tile-console-url]")
                for i, (sandbox_id, _cookie) in enumerate(people):
                    selector = f'[data-watch-tile="{sandbox_id}"] .xterm-rows'
                    grid_echo.append(await _echo_ms(page, typists[i][1], selector, f"g{r}x{i}", 11 + i))
            open_on_screen = await page.evaluate("window.watchGrid.open()")
            await page.set_viewport_size({"width": 700, "height": 300})
            await page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
            await asyncio.sleep(1.0)
            open_scrolled = await page.evaluate("window.watchGrid.open()")
            await browser.close()
        for http, ws, reader in typists:
            reader.cancel()
            await ws.close()
            await http.close()

    def summary(values: list[float]) -> dict:
        return {"median": round(statistics.median(values), 1), "p95": round(percentile(values, 95), 1), "n": len(values)}

    return {
        "learners": learners, "rounds": rounds,
        "connect_ms": {"grid": summary(grid_connect), "watch_page_baseline": summary(watch_connect)},
        "prompt_ms": {"grid": summary(grid_prompt), "watch_page_baseline": summary(watch_prompt)},
        "echo_ms": {"grid": summary(grid_echo), "watch_page_baseline": summary(watch_echo)},
        "consoles_open": {"tiles": learners, "on_screen": open_on_screen, "one_tile_in_view": open_scrolled},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--learners", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(main(args.learners, args.rounds))
    print(json.dumps(result, indent=None if args.json else 2))
