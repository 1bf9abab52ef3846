"""The page's only script and style sheet, served from ``/static/`` (no build step).

The script polls ``/api/state`` (with the page's search) every ``data-poll``
seconds and rebuilds the cameras, the watches and the timeline with
``document.createElement`` and ``textContent``: a reasoning that holds HTML
shows as text. It keeps the picture elements whose entry did not change, so
pictures do not flicker.
"""

from __future__ import annotations

from pipeline.app.web.pages import STYLE

APP_JS = r"""
"use strict";
(function () {
  const body = document.body;
  const pollMs = Math.max(200, parseFloat(body.dataset.poll || "2") * 1000);
  const unlocked = body.dataset.unlocked === "1";

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function picture(id, alt) {
    if (id === null || id === undefined) return el("div", {class: "nopic"}, "no picture yet");
    return el("img", {src: "/picture/" + Number(id) + ".jpg", alt: alt});
  }
  function seconds(v) { return v === null || v === undefined ? "" : Math.round(v) + " s"; }

  function renderCameras(cams) {
    const box = document.getElementById("cameras");
    if (!box) return;
    box.replaceChildren(...cams.map(function (c) {
      const card = el("article", {class: "camera", "data-camera": c.name});
      card.append(el("h3", {}, c.name));
      const st = el("div", {class: "state " + c.state}, c.state);
      if (c.last_error) st.append(" ", el("span", {class: "why"}, c.last_error));
      card.append(st, picture(c.picture, "newest picture of " + c.name));
      return card;
    }));
  }

  function renderWatches(watches) {
    const rows = document.getElementById("watch-rows");
    if (!rows) return;
    rows.replaceChildren(...watches.map(function (w) {
      const tr = el("tr", {"data-watch": w.name});
      tr.append(el("td", {class: "name"}, w.name), el("td", {}, w.camera),
                el("td", {class: "status"}, w.status), el("td", {class: "looks"}, w.looks),
                el("td", {class: "reasoning"}, w.last_reasoning),
                el("td", {class: "next"}, seconds(w.next_look_in)));
      const cell = el("td");
      if (unlocked && (w.status === "queued" || w.status === "running")) {
        const form = el("form", {class: "inline", method: "post",
                                 action: "/watches/" + encodeURIComponent(w.name) + "/cancel"});
        form.append(el("button", {type: "submit", name: "cancel", value: w.name}, "Cancel"));
        cell.append(form);
      }
      tr.append(cell);
      return tr;
    }));
  }

  function renderTimeline(entries) {
    const list = document.getElementById("timeline");
    if (!list) return;
    const empty = document.getElementById("timeline-empty");
    if (empty && entries.length) empty.remove();
    list.replaceChildren(...entries.map(function (r) {
      const li = el("li", {class: "entry kind-" + r.kind, "data-id": r.id});
      if (r.has_picture) li.append(picture(r.id, r.kind + " picture"));
      const who = [r.camera, r.watch].filter(Boolean).join(" / ");
      const what = [r.kind, r.trigger, r.answer].filter(Boolean).join(" ");
      const next = r.next_look ? " · next look in " + seconds(r.next_look) : "";
      const box = el("div");
      box.append(el("div", {class: "meta"}, r.iso_time + " · " + who + " · " + what + next),
                 el("div", {class: "text"}, r.text));
      if (r.message) box.append(el("div", {class: "message"}, r.message));
      li.append(box);
      return li;
    }));
  }

  async function poll() {
    try {
      const resp = await fetch("/api/state" + window.location.search,
                               {headers: {Accept: "application/json"}, cache: "no-store"});
      if (resp.ok) {
        const state = await resp.json();
        renderCameras(state.cameras);
        renderWatches(state.watches);
        renderTimeline(state.timeline);
        body.dataset.updated = String(Date.now());
      }
    } catch (err) {
      /* the server may be restarting: try again at the next tick */
    }
    window.setTimeout(poll, pollMs);
  }
  window.setTimeout(poll, pollMs);
})();
"""

STATIC: dict[str, tuple[str, bytes]] = {
    "/static/app.js": ("text/javascript; charset=utf-8", APP_JS.encode()),
    "/static/style.css": ("text/css; charset=utf-8", STYLE.encode()),
}
"""Path -> (content type, body)."""
