// ClawPair's window: renders what the core reports and sends the owner's decisions back.
// Live through events from the app (no polling). Requester text is only ever set with
// textContent, never parsed as HTML. Usable by keyboard alone and with a screen reader: every
// action button names what it acts on, news is spoken through one polite live region, and a
// re-render never drops the keyboard focus on the floor.
//
// One module per view (views/); each describes itself in one object (`view`): its name, its
// Alt+N shortcut, which core events touch it, how it renders and wires its controls. This
// file's table of them is what the sidebar, the shortcuts and live updates all read.
import { invoke, tauri } from "./lib/core.js";
import { $, announce, focusView, toast, trapFocus } from "./lib/dom.js";
import { onNavigate } from "./lib/nav.js";
import { state } from "./lib/state.js";
import { renderStatus } from "./lib/status.js";
import { view as activity } from "./views/activity.js";
import { view as allowlists } from "./views/allowlists.js";
import { view as devices } from "./views/devices.js";
import { view as guide } from "./views/guide.js";
import { view as pair } from "./views/pair.js";
import { view as requests, watchRequests } from "./views/requests.js";
import { renderSettings, view as settings } from "./views/settings.js";

const VIEWS = [guide, requests, allowlists, devices, pair, activity, settings];
const byName = new Map(VIEWS.map((v) => [v.name, v]));

// ------------------------------------------------------------------ navigation

async function show(name) {
  const next = byName.get(name);
  if (!next) return;
  const leaving = byName.get(state.current);
  if (leaving !== next && leaving.mayLeave && !(await leaving.mayLeave())) return;
  if (leaving !== next && leaving.leave) leaving.leave();
  state.current = name;
  for (const v of VIEWS) $(`view-${v.name}`).hidden = v !== next;
  for (const b of document.querySelectorAll(".nav")) {
    b.classList.toggle("active", b.dataset.view === name);
    if (b.dataset.view === name) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  }
  if (next.enter) next.enter();
  next.render();
  // The heading, so a screen reader says where the owner now is and Tab goes on from there.
  focusView();
}

// ------------------------------------------------------------------ live updates

function onCoreEvent(ev) {
  const { event } = ev.payload || {};
  if (!event) return;
  if (event === "pairing.dropped") state.drops += 1;
  const entry = ev.payload?.payload || {};
  if (event === "audit.appended" && entry.action === "dm.notified" && entry.delivered === false) {
    toast(
      `Approved, but ${entry.channel || "the chat"} did not deliver the confirmation to ${entry.senderId || "the sender"}: tell them yourself.`,
      "bad",
    );
  }
  const current = byName.get(state.current);
  if (
    /^(pairing\.|device\.pair\.|node\.pair\.|exec\.approval\.|gateway\.status|settings\.|channel\.status|attach\.status)/.test(
      event,
    )
  )
    renderStatus();
  if (event === "attach.status" && !current.keepOnAttach) current.render();
  // On Requests the re-render below announces them.
  if (
    current !== requests &&
    ["pairing.requested", "device.pair.requested", "node.pair.requested", "exec.approval.requested"].includes(event)
  )
    watchRequests();
  if (current.touches?.test(event)) {
    if (current.onTouch) current.onTouch(event);
    else current.render();
  }
}

// ------------------------------------------------------------------ theme

function applyTheme(t) {
  document.documentElement.dataset.theme = t;
  $("theme-toggle").textContent = `Theme: ${t}`;
}

function cycleTheme() {
  const order = ["system", "light", "dark"];
  const next = order[(order.indexOf(document.documentElement.dataset.theme || "system") + 1) % order.length];
  localStorage.setItem("theme", next);
  applyTheme(next);
  announce(`Theme: ${next}`);
}

// ------------------------------------------------------------------ start

/** Retry on the banner: starts the gateway again and says how it went. */
async function retryGateway(e) {
  const b = e.currentTarget;
  b.disabled = true;
  try {
    const r = await invoke("retry_gateway");
    if (r?.gateway?.listening) toast(`Gateway on ${r.gateway.address}`, "ok");
    else toast(`Still not running: ${r?.gateway?.error || "unknown reason"}`, "bad");
  } catch (err) {
    toast(err?.message || String(err), "bad");
  } finally {
    b.disabled = false;
    await renderStatus();
  }
}

async function start() {
  applyTheme(localStorage.getItem("theme") || "system");
  onNavigate(show);
  for (const b of document.querySelectorAll(".nav")) b.addEventListener("click", () => show(b.dataset.view));
  document.addEventListener("keydown", (e) => {
    const target = e.altKey && VIEWS.find((v) => v.shortcut === e.key);
    if (target) {
      show(target.name);
      e.preventDefault();
    }
  });
  $("theme-toggle").addEventListener("click", cycleTheme);
  $("dialog").addEventListener("keydown", trapFocus);
  for (const v of VIEWS) if (v.wire) v.wire();
  $("gateway-retry").addEventListener("click", retryGateway);
  $("gateway-change-port").addEventListener("click", async () => {
    await show("settings");
    await renderSettings(true);
    $("set-port").focus();
    $("set-port").select();
  });

  await tauri.event.listen("clawpair://event", onCoreEvent);
  await tauri.event.listen("clawpair://navigate", (e) => show(e.payload));
  await renderStatus();
  await show(state.status?.showGuide ? "guide" : "requests");
  if (state.current !== "requests") watchRequests(); // what waits at start is not news
}

document.addEventListener("DOMContentLoaded", start);
