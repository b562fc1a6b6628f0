// Pair a phone: a setup code as QR and text with its countdown, or why none can be made and
// the way out (listen on the LAN, a URL phones can reach).
import { act } from "../lib/core.js";
import { $, copyText, el, toast } from "../lib/dom.js";
import { state } from "../lib/state.js";
import { renderStatus } from "../lib/status.js";

let pairTimer = null;
let pairExpires = 0;

function stopPairTimer() {
  if (pairTimer) clearInterval(pairTimer);
  pairTimer = null;
}

function tickPair() {
  const left = Math.round((pairExpires - Date.now()) / 1000);
  if (left <= 0) {
    $("pair-countdown").textContent = "Expired — make a new code";
    $("pair-qr").classList.add("expired");
    stopPairTimer();
    return;
  }
  $("pair-countdown").textContent = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
}

/** The URL phones reach OpenClaw's gateway at, given in this window while attached. */
let attachedPairUrl = null;

/** Several gateways attached: the one the code is for, chosen above it (the first attached
 * one until the owner picks). */
function pickGateway() {
  const gws = (state.status?.attach?.gateways || []).filter((g) => g.started);
  const box = $("pair-gateway-box");
  const select = $("pair-gateway");
  box.hidden = gws.length < 2;
  if (box.hidden) return null;
  const chosen = select.value;
  select.replaceChildren(
    ...gws.map((g) => el("option", { value: g.label, text: `${g.label}${g.attached ? "" : " (not attached)"}` })),
  );
  if (gws.some((g) => g.label === chosen)) select.value = chosen;
  return select.value || null;
}

async function renderPair(fresh) {
  if (!fresh && pairExpires > Date.now() && !$("pair-code").hidden) {
    if (!pairTimer) pairTimer = setInterval(tickPair, 1000);
    return;
  }
  const args = state.status?.attach && attachedPairUrl ? { url: attachedPairUrl } : {};
  const gateway = pickGateway();
  if (gateway) args.gateway = gateway;
  const r = await act("setup_create", args);
  if (!r) return;
  showPair(r);
}

function showPair(r) {
  stopPairTimer();
  $("pair-error").hidden = true;
  const warnings = (!r.error && r.warnings) || [];
  $("pair-warnings").hidden = !warnings.length;
  $("pair-warnings-list").replaceChildren(
    ...warnings.map((w) => el("li", { text: `${w.charAt(0).toUpperCase() + w.slice(1)}.` })),
  );
  if (r.error) {
    $("pair-code").hidden = true;
    $("pair-loopback").hidden = !r.loopbackOnly;
    // Attached to OpenClaw: its gateway's reason, and a URL phones can reach is the way out.
    $("pair-expose-box").hidden = !!r.attached;
    $("pair-loopback-title").textContent = r.attached
      ? "OpenClaw's gateway gave no setup code"
      : "Your gateway only listens on this computer";
    $("pair-loopback-text").hidden = !!r.attached;
    $("pair-attached-text").hidden = !r.attached;
    if (r.attached) $("pair-attached-text").textContent = `${r.error} Give a URL phones can reach:`;
    if (!r.loopbackOnly) {
      $("pair-error").textContent = r.error;
      $("pair-error").hidden = false;
    }
    return;
  }
  $("pair-loopback").hidden = true;
  $("pair-code").hidden = false;
  // OpenClaw's protocol cannot invalidate its codes (they expire on their own).
  $("pair-invalidate").hidden = !!state.status?.attach;
  $("pair-qr").src = `data:image/svg+xml;base64,${btoa(r.qrSvg)}`;
  $("pair-qr").classList.remove("expired");
  $("pair-setup-code").textContent = r.setupCode;
  $("pair-url-used").textContent = r.url;
  pairExpires = r.expiresAtMs - ((r.now || Date.now()) - Date.now());
  tickPair();
  pairTimer = setInterval(tickPair, 1000);
}

function wire() {
  $("pair-new").addEventListener("click", () => renderPair(true));
  $("pair-gateway").addEventListener("change", () => renderPair(true));
  $("pair-copy").addEventListener("click", () => copyText($("pair-setup-code").textContent));
  $("pair-invalidate").addEventListener("click", async () => {
    const r = await act("setup_cleanup");
    if (r) {
      toast(`Invalidated ${r.removed} code${r.removed === 1 ? "" : "s"} not used yet`, "ok");
      pairExpires = 0;
      stopPairTimer();
      $("pair-countdown").textContent = "Invalidated — make a new code";
      $("pair-qr").classList.add("expired");
    }
  });
  $("pair-expose").addEventListener("click", async () => {
    const r = await act("expose_on_lan");
    if (r) {
      await renderStatus();
      renderPair(true);
    }
  });
  $("pair-url-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const url = $("pair-url").value.trim();
    if (!url) return;
    if (state.status?.attach) {
      // Attached: the URL goes to OpenClaw with each code (ClawPair's settings are not its).
      attachedPairUrl = url;
      renderPair(true);
    } else if (await act("save_settings", { patch: { publicUrl: url } })) renderPair(true);
  });
}

export const view = {
  name: "pair",
  shortcut: "4",
  touches: /^(setup\.changed|gateway\.status)/,
  render: () => renderPair(false),
  // A live code stays as it is; a gateway that now listens on the LAN can give one.
  onTouch(event) {
    if (event === "gateway.status" && !$("pair-loopback").hidden) renderPair(true);
  },
  leave: stopPairTimer,
  // Attached or detached, the code shown belongs to the other gateway: nothing to redo here.
  keepOnAttach: true,
  wire,
};
