"""The page's HTML, written by hand; every value goes through :func:`html.escape`.

Server-rendered and complete without JavaScript (forms post, links link);
``/static/app.js`` only refreshes the cameras, watches and timeline from
``/api/state`` every ``[web] poll_s`` seconds, building the DOM with
``textContent``, never HTML strings.

Example:
    >>> row = {"id": 1, "iso_time": "1970-01-01T00:00:00+00:00", "kind": "look",
    ...        "camera": "c", "watch": "w", "trigger": "timer", "answer": "not_met",
    ...        "text": "<b>hi</b>", "message": "", "has_picture": False, "next_look": 5.0}
    >>> "&lt;b&gt;hi&lt;/b&gt;" in entry_html(row)
    True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any
from urllib.parse import quote

STYLE = """
body{font:15px/1.4 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#1d2330;color:#fff;padding:.6em 1em;display:flex;gap:1em;align-items:center}
header a{color:#cfe0ff}main{padding:1em;display:grid;gap:1em}
section{background:#fff;border-radius:8px;padding:.8em 1em;box-shadow:0 1px 2px #0002}
h2{margin:.2em 0 .6em;font-size:1.1em}.cams{display:flex;flex-wrap:wrap;gap:1em}
.camera{width:260px}.camera img{width:100%;border-radius:4px;background:#ddd;min-height:60px}
.online{color:#137333}.offline{color:#b3261e}table{border-collapse:collapse;width:100%}
td,th{text-align:left;padding:.3em .5em;border-bottom:1px solid #eee;vertical-align:top}
ol#timeline{list-style:none;padding:0;margin:0}
.entry{display:flex;gap:.8em;padding:.4em 0;border-bottom:1px solid #eee}
.entry img{width:120px;border-radius:4px}.meta{color:#5f6368;font-size:.9em}
.kind-alert{background:#fff4e5}.flash{padding:.5em;background:#e6f4ea;border-radius:4px}
.problems{padding:.5em;background:#fce8e6;border-radius:4px}
form.inline{display:inline}input,select,textarea{font:inherit}
label{display:block;margin:.2em 0}textarea{width:100%;max-width:40em}
"""


def e(value: Any) -> str:
    """``value`` as escaped HTML text (``None`` as empty)."""
    return escape("" if value is None else str(value), quote=True)


def _picture(entry_id: Any, alt: str) -> str:
    if entry_id is None:
        return '<div class="nopic">no picture yet</div>'
    return f'<img src="/picture/{int(entry_id)}.jpg" alt="{e(alt)}">'


def camera_html(cam: Mapping[str, Any]) -> str:
    """One camera card: name, state (and why offline), newest picture."""
    error = f' <span class="why">{e(cam["last_error"])}</span>' if cam["last_error"] else ""
    return (
        f'<article class="camera" data-camera="{e(cam["name"])}"><h3>{e(cam["name"])}</h3>'
        f'<div class="state {e(cam["state"])}">{e(cam["state"])}{error}</div>'
        f"{_picture(cam['picture'], 'newest picture of ' + str(cam['name']))}</article>"
    )


def _seconds(value: Any) -> str:
    return "" if value is None else f"{float(value):.0f} s"


def watch_html(w: Mapping[str, Any], unlocked: bool) -> str:
    """One watch row: name, camera, status, looks, last reasoning, next look, cancel."""
    cancel = ""
    if unlocked and w["status"] in ("queued", "running"):
        cancel = (
            f'<form class="inline" method="post" action="/watches/{quote(str(w["name"]))}/cancel">'
            f'<button type="submit" name="cancel" value="{e(w["name"])}">Cancel</button></form>'
        )
    return (
        f'<tr data-watch="{e(w["name"])}"><td class="name">{e(w["name"])}</td>'
        f'<td>{e(w["camera"])}</td><td class="status">{e(w["status"])}</td>'
        f'<td class="looks">{e(w["looks"])}</td><td class="reasoning">{e(w["last_reasoning"])}</td>'
        f'<td class="next">{e(_seconds(w["next_look_in"]))}</td><td>{cancel}</td></tr>'
    )


def entry_html(row: Mapping[str, Any]) -> str:
    """One timeline entry: picture, time, who, what, and the text."""
    who = " / ".join(str(x) for x in (row["camera"], row["watch"]) if x)
    what = " ".join(str(x) for x in (row["kind"], row["trigger"], row["answer"]) if x)
    nxt = f" · next look in {_seconds(row['next_look'])}" if row.get("next_look") else ""
    pic = _picture(row["id"], f"{row['kind']} picture") if row["has_picture"] else ""
    message = f'<div class="message">{e(row["message"])}</div>' if row["message"] else ""
    return (
        f'<li class="entry kind-{e(row["kind"])}" data-id="{int(row["id"])}">{pic}<div>'
        f'<div class="meta">{e(row["iso_time"])} · {e(who)} · {e(what)}{e(nxt)}</div>'
        f'<div class="text">{e(row["text"])}</div>{message}</div></li>'
    )


def _options(names: Iterable[str], selected: str = "", blank: str | None = None) -> str:
    out = [f'<option value="">{e(blank)}</option>'] if blank is not None else []
    for n in names:
        sel = " selected" if n == selected else ""
        out.append(f'<option value="{e(n)}"{sel}>{e(n)}</option>')
    return "".join(out)


def controls_html(cameras: Sequence[str], unlocked: bool, writable: bool) -> str:
    """The unlock form, or the start-a-watch form once unlocked."""
    if not writable:
        return (
            "<p>This page is read-only: set <code>[web] token</code> "
            "(or <code>LOOKOUT_WEB__TOKEN</code>) to start and cancel watches here.</p>"
        )
    if not unlocked:
        return (
            '<form id="unlock-form" method="post" action="/unlock">'
            '<input type="text" name="username" value="lookout" autocomplete="username" hidden>'
            '<label>Token <input type="password" name="token" id="token" '
            'autocomplete="current-password" required></label>'
            '<button type="submit">Unlock</button></form>'
        )
    return (
        '<form id="start-form" method="post" action="/watches">'
        '<label>Name <input name="name" id="watch-name" required maxlength="64"></label>'
        '<label>Camera <select name="camera" id="watch-camera">'
        f"{_options(cameras)}</select></label>"
        '<label>Condition <textarea name="condition" id="watch-condition" required '
        'maxlength="2000" rows="2"></textarea></label>'
        '<label>Labels <input name="labels" placeholder="person, car"></label>'
        '<label>Zones <input name="zones" placeholder="path"></label>'
        '<button type="submit" id="start-watch">Start watch</button></form>'
    )


def page_html(
    state: Mapping[str, Any],
    *,
    unlocked: bool,
    writable: bool,
    poll_s: float,
    flash: str = "",
    problems: Sequence[str] = (),
) -> str:
    """The whole page."""
    cams = state["cameras"]
    q = state["query"]
    names = [c["name"] for c in cams]
    flash_html = f'<p class="flash" id="flash">{e(flash)}</p>' if flash else ""
    probs = "".join(f"<li>{e(p)}</li>" for p in problems)
    problems_html = f'<ul class="problems" id="problems">{probs}</ul>' if problems else ""
    watches = "".join(watch_html(w, unlocked) for w in state["watches"])
    rows = "".join(entry_html(r) for r in state["timeline"])
    empty = "" if rows else '<p id="timeline-empty">Nothing yet.</p>'
    store = "" if state["store"] else "<p>The activity store is off ([activity]).</p>"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,"><title>Lookout</title>'
        '<link rel="stylesheet" href="/static/style.css"></head>'
        f'<body data-poll="{float(poll_s):g}" data-unlocked="{"1" if unlocked else "0"}">'
        '<header><strong>Lookout</strong><a href="/">Now</a><a href="/reports">Replay reports</a>'
        "</header><main>"
        f"{flash_html}{problems_html}"
        f'<section><h2>Cameras</h2><div class="cams" id="cameras">'
        f"{''.join(camera_html(c) for c in cams)}</div></section>"
        "<section><h2>Watches</h2><table><thead><tr><th>Watch</th><th>Camera</th><th>Status</th>"
        "<th>Looks</th><th>Last reasoning</th><th>Next look</th><th></th></tr></thead>"
        f'<tbody id="watch-rows">{watches}</tbody></table>'
        f"{controls_html(names, unlocked, writable)}</section>"
        '<section><h2>Timeline</h2><form id="search-form" method="get" action="/">'
        f'<input type="search" name="q" id="search" value="{e(q["q"])}" placeholder="search">'
        f'<select name="camera" id="search-camera">{_options(names, q["camera"], "all cameras")}'
        '</select><button type="submit">Search</button></form>'
        f'{store}<ol id="timeline">{rows}</ol>{empty}</section>'
        '</main><script src="/static/app.js"></script></body></html>'
    )


def reports_html(reports: Sequence[tuple[str, str]], configured: bool) -> str:
    """The list of replay reports: (folder name, modified time)."""
    if not configured:
        body = "<p>No reports folder: set <code>[web] reports</code>.</p>"
    elif not reports:
        body = (
            "<p>No replay reports yet "
            "(<code>python -m pipeline replay ... --report DIR</code>).</p>"
        )
    else:
        items = "".join(
            f'<li><a href="/reports/{quote(name)}/index.html">{e(name)}</a> '
            f'<span class="meta">{e(when)}</span></li>'
            for name, when in reports
        )
        body = f'<ul id="reports">{items}</ul>'
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<link rel="icon" href="data:,"><title>Lookout: replay reports</title>'
        '<link rel="stylesheet" href="/static/style.css"></head><body>'
        '<header><strong>Lookout</strong><a href="/">Now</a><a href="/reports">Replay reports</a>'
        f"</header><main><section><h2>Replay reports</h2>{body}</section></main></body></html>"
    )


def message_html(status: int, title: str, problems: Sequence[str] = ()) -> str:
    """A small page for a refused or failed request."""
    items = "".join(f"<li>{e(p)}</li>" for p in problems)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<link rel="icon" href="data:,"><title>{status}</title>'
        '<link rel="stylesheet" href="/static/style.css"></head><body><main><section>'
        f'<h2>{e(title)}</h2><ul class="problems">{items}</ul><p><a href="/">Back</a></p>'
        "</section></main></body></html>"
    )
