// The sidebar's gateway line, the banner above every view when the gateway is down, the
// Requests badge and the window title, from `app_status`.
import { act } from "./core.js";
import { $, el } from "./dom.js";
import { state } from "./state.js";

export async function renderStatus() {
  const s = await act("app_status");
  if (!s) return;
  state.status = s;
  const g = s.gateway || {};
  const a = s.attach;
  const box = $("gateway-status");
  if (a) {
    box.querySelector(".text").textContent = a.line;
    box.querySelector(".dot").className = `dot ${a.attached ? "ok" : "bad"}`;
  } else {
    // The reason is in the banner above every view; the sidebar stays short.
    box.querySelector(".text").textContent = g.listening
      ? `Gateway on ${g.address}`
      : g.error
        ? "Gateway not running"
        : "Gateway starting…";
    box.querySelector(".dot").className = `dot ${g.listening ? "ok" : g.error ? "bad" : ""}`;
  }
  // Not running (and not attached): said in every view, with the two ways out.
  const down = !a && !g.listening && !!g.error;
  $("gateway-banner").hidden = !down;
  if (down)
    $("gateway-banner-reason").textContent = g.error.charAt(0).toUpperCase() + g.error.slice(1).replace(/\.?$/, ".");
  $("attached-note").hidden = !a;
  if (a) {
    $("attached-line").textContent = `${a.line} — what differs`;
    $("attached-limits").replaceChildren(...(a.limits || []).map((t) => el("li", { text: t })));
  }
  box.title = down ? g.error : box.querySelector(".text").textContent;
  $("paused-status").hidden = !s.paused;
  const badge = $("badge-requests");
  badge.replaceChildren(String(s.pending), el("span", { class: "visually-hidden", text: " waiting" }));
  badge.hidden = !s.pending;
  document.title = s.pending ? `ClawPair (${s.pending})` : "ClawPair";
  $("guide-state-dir").textContent = s.stateDir;
  $("settings-file").textContent = `${s.stateDir}/clawpair.json`;
}
