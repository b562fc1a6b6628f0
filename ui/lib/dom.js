// Building the page and keeping it usable: elements from data (text is never parsed as HTML),
// the live region, toasts, the keyboard focus across re-renders, and the dialog.
import { state } from "./state.js";

export const $ = (id) => document.getElementById(id);

/** Builds an element; strings become text nodes (never HTML). */
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** Which attached OpenClaw gateway an item is at, where several are attached (else nothing). */
export function gatewayChip(item) {
  return item.gateway
    ? el("span", { class: "chip gateway-chip", title: `At the OpenClaw gateway ${item.gateway}`, text: item.gateway })
    : null;
}

/** Says `msg` to assistive technology, politely (after what it is reading now). */
export function announce(msg) {
  const a = $("announcer");
  // Each message is a new node: added nodes are what a live region reads, so the same words
  // twice are read twice, and two messages in a row do not overwrite each other.
  const p = el("p", { text: msg });
  a.append(p);
  while (a.childElementCount > 3) a.firstElementChild.remove();
  setTimeout(() => p.remove(), 10000);
}

export function toast(msg, kind) {
  const t = $("toast");
  t.textContent = msg;
  t.className = kind || "";
  t.hidden = false;
  announce(msg);
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => {
    t.hidden = true;
  }, 4000);
}

const FOCUSABLE = "button, input, select, textarea, a[href], [tabindex]:not([tabindex='-1'])";

function focusables(root) {
  return [...root.querySelectorAll(FOCUSABLE)].filter(
    (e) => !e.disabled && !e.closest("[hidden]") && e.getClientRects().length,
  );
}

/** Puts the focus on the current view's heading (where a screen reader starts reading). */
export function focusView() {
  const h = document.querySelector(`#view-${state.current} h1`);
  if (h) h.focus({ preventScroll: true });
}

/**
 * Replaces a container's content; if the focus was inside, it goes to the same control in the
 * new content (same data-focus-key), else to the one now in its place, else to the heading.
 */
export function replaceKeepingFocus(container, nodes) {
  const active = document.activeElement;
  const inside = active && active !== container && container.contains(active);
  const key = inside ? active.dataset.focusKey : null;
  const index = inside ? focusables(container).indexOf(active) : -1;
  container.replaceChildren(...nodes);
  if (!inside) return;
  let target = key ? container.querySelector(`[data-focus-key="${CSS.escape(key)}"]`) : null;
  if (!target) {
    const all = focusables(container);
    target = all[Math.min(Math.max(index, 0), all.length - 1)];
  }
  if (target) target.focus({ preventScroll: true });
  else focusView();
}

/** A control about to be disabled hands the focus to the view first. */
export function disableKeepingFocus(control, disabled) {
  if (disabled && document.activeElement === control) focusView();
  control.disabled = disabled;
}

/**
 * Opens the dialog modally; when it closes, the focus goes back to the control that opened it
 * (or, if a re-render replaced that control, to its replacement, else to the view) before
 * `onClose` runs.
 */
function openDialog(onClose) {
  const d = $("dialog");
  const opener = document.activeElement;
  const key = opener?.dataset ? opener.dataset.focusKey : null;
  // Escape closes without a value: a stale "ok" from the last dialog must not count.
  d.returnValue = "";
  d.addEventListener(
    "close",
    () => {
      const back = opener?.isConnected
        ? opener
        : key
          ? document.querySelector(`[data-focus-key="${CSS.escape(key)}"]`)
          : null;
      if (back && !back.disabled && !back.closest("[hidden]")) back.focus({ preventScroll: true });
      else focusView();
      if (onClose) onClose(d.returnValue);
    },
    { once: true },
  );
  d.showModal();
}

export function confirmDialog(title, body, okLabel) {
  $("dialog-title").textContent = title;
  $("dialog-body").replaceChildren(typeof body === "string" ? el("p", { text: body }) : body);
  $("dialog-ok").textContent = okLabel || "OK";
  $("dialog-ok").className = "danger";
  $("dialog-cancel").hidden = false;
  return new Promise((resolve) => openDialog((v) => resolve(v === "ok")));
}

export function infoDialog(title, body) {
  $("dialog-title").textContent = title;
  $("dialog-body").replaceChildren(body);
  $("dialog-ok").textContent = "Done";
  $("dialog-ok").className = "primary";
  $("dialog-cancel").hidden = true;
  openDialog(null);
}

/** Tab and Shift+Tab stay inside the open dialog, going round. */
export function trapFocus(e) {
  // WebKitGTK reports Shift+Tab (GTK's ISO_Left_Tab) as key "Unidentified", code "Tab".
  if (e.key !== "Tab" && e.code !== "Tab") return;
  const all = focusables($("dialog"));
  if (!all.length) return;
  const first = all[0];
  const last = all[all.length - 1];
  if (e.shiftKey && (document.activeElement === first || !$("dialog").contains(document.activeElement))) {
    last.focus();
    e.preventDefault();
  } else if (!e.shiftKey && document.activeElement === last) {
    first.focus();
    e.preventDefault();
  }
}

/** A table with a caption (said first by screen readers) and column headers. */
export function table(cls, caption, headers, rows) {
  return el(
    "table",
    { class: cls },
    el("caption", { class: "visually-hidden", text: caption }),
    el(
      "thead",
      {},
      el(
        "tr",
        {},
        ...headers.map((h) =>
          el("th", { scope: "col" }, h || el("span", { class: "visually-hidden", text: "Actions" })),
        ),
      ),
    ),
    el("tbody", {}, ...rows),
  );
}

/** Puts `text` on the clipboard (through a hidden field where the clipboard API is refused). */
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
  } catch (_) {
    const t = el("textarea", { class: "offscreen" });
    t.value = text;
    document.body.append(t);
    t.select();
    document.execCommand("copy");
    t.remove();
  }
  toast("Copied", "ok");
}
