// ClawPair's window: renders what the core reports and sends the owner's decisions back.
// Live through events from the app (no polling). Requester text is only ever set with
// textContent, never parsed as HTML. Usable by keyboard alone and with a screen reader: every
// action button names what it acts on, news is spoken through one polite live region, and a
// re-render never drops the keyboard focus on the floor.
"use strict";

const tauri = window.__TAURI__;
const invoke = (cmd, args) => tauri.core.invoke(cmd, args);

const $ = (id) => document.getElementById(id);
const VIEWS = ["guide", "requests", "allowlists", "devices", "pair", "activity", "settings"];
let current = "requests";
let status = null;
let pairTimer = null;
let pairExpires = 0;
let drops = 0;
// Set while the owner edits the Settings form, so live updates never overwrite their edits.
let settingsDirty = false;
// Requests already seen (null until the first list), so only new ones are announced.
let knownRequests = null;

/** Builds an element; strings become text nodes (never HTML). */
function el(tag, attrs, ...children) {
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

function ago(ms) {
  if (!ms) return "—";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + "s ago";
  if (s < 3600) return Math.floor(s / 60) + "m ago";
  if (s < 86400) return Math.floor(s / 3600) + "h ago";
  return Math.floor(s / 86400) + "d ago";
}

function until(ms) {
  if (!ms) return "—";
  const s = Math.round((ms - Date.now()) / 1000);
  if (s <= 0) return "expired";
  if (s < 60) return "in " + s + "s";
  if (s < 3600) return "in " + Math.ceil(s / 60) + "m";
  return "in " + Math.floor(s / 3600) + "h " + Math.round((s % 3600) / 60) + "m";
}

function date(ms) {
  if (!ms) return "—";
  const d = new Date(ms);
  const sameYear = d.getFullYear() === new Date().getFullYear();
  return d.toLocaleString(undefined, { year: sameYear ? undefined : "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

const iso = (s) => (s ? Date.parse(s) : 0);

/** Says `msg` to assistive technology, politely (after what it is reading now). */
function announce(msg) {
  const a = $("announcer");
  // Each message is a new node: added nodes are what a live region reads, so the same words
  // twice are read twice, and two messages in a row do not overwrite each other.
  const p = el("p", { text: msg });
  a.append(p);
  while (a.childElementCount > 3) a.firstElementChild.remove();
  setTimeout(() => p.remove(), 10000);
}

function toast(msg, kind) {
  const t = $("toast");
  t.textContent = msg;
  t.className = kind || "";
  t.hidden = false;
  announce(msg);
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, 4000);
}

// ------------------------------------------------------------------ focus

const FOCUSABLE = "button, input, select, textarea, a[href], [tabindex]:not([tabindex='-1'])";

function focusables(root) {
  return [...root.querySelectorAll(FOCUSABLE)].filter((e) => !e.disabled && !e.closest("[hidden]") && e.getClientRects().length);
}

/** Puts the focus on the current view's heading (where a screen reader starts reading). */
function focusView() {
  const h = document.querySelector("#view-" + current + " h1");
  if (h) h.focus({ preventScroll: true });
}

/**
 * Replaces a container's content; if the focus was inside, it goes to the same control in the
 * new content (same data-focus-key), else to the one now in its place, else to the heading.
 */
function replaceKeepingFocus(container, nodes) {
  const active = document.activeElement;
  const inside = active && active !== container && container.contains(active);
  const key = inside ? active.dataset.focusKey : null;
  const index = inside ? focusables(container).indexOf(active) : -1;
  container.replaceChildren(...nodes);
  if (!inside) return;
  let target = key ? container.querySelector("[data-focus-key=\"" + CSS.escape(key) + "\"]") : null;
  if (!target) {
    const all = focusables(container);
    target = all[Math.min(Math.max(index, 0), all.length - 1)];
  }
  if (target) target.focus({ preventScroll: true }); else focusView();
}

/** A control about to be disabled hands the focus to the view first. */
function disableKeepingFocus(control, disabled) {
  if (disabled && document.activeElement === control) focusView();
  control.disabled = disabled;
}

/** Runs a command; shows its one-line error instead of failing silently. */
async function act(cmd, args, okMsg) {
  try {
    const r = await invoke(cmd, args);
    if (okMsg) toast(okMsg, "ok");
    return r;
  } catch (e) {
    toast((e && e.message) || String(e), "bad");
    return null;
  }
}

/**
 * Opens the dialog modally; when it closes, the focus goes back to the control that opened it
 * (or, if a re-render replaced that control, to its replacement, else to the view) before
 * `onClose` runs.
 */
function openDialog(onClose) {
  const d = $("dialog");
  const opener = document.activeElement;
  const key = opener && opener.dataset ? opener.dataset.focusKey : null;
  // Escape closes without a value: a stale "ok" from the last dialog must not count.
  d.returnValue = "";
  d.addEventListener("close", () => {
    const back = opener && opener.isConnected ? opener
      : key ? document.querySelector("[data-focus-key=\"" + CSS.escape(key) + "\"]") : null;
    if (back && !back.disabled && !back.closest("[hidden]")) back.focus({ preventScroll: true }); else focusView();
    if (onClose) onClose(d.returnValue);
  }, { once: true });
  d.showModal();
}

function confirmDialog(title, body, okLabel) {
  $("dialog-title").textContent = title;
  $("dialog-body").replaceChildren(typeof body === "string" ? el("p", { text: body }) : body);
  $("dialog-ok").textContent = okLabel || "OK";
  $("dialog-ok").className = "danger";
  $("dialog-cancel").hidden = false;
  return new Promise((resolve) => openDialog((v) => resolve(v === "ok")));
}

function infoDialog(title, body) {
  $("dialog-title").textContent = title;
  $("dialog-body").replaceChildren(body);
  $("dialog-ok").textContent = "Done";
  $("dialog-ok").className = "primary";
  $("dialog-cancel").hidden = true;
  openDialog(null);
}

/** Tab and Shift+Tab stay inside the open dialog, going round. */
function trapFocus(e) {
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

// ------------------------------------------------------------------ navigation

function show(view) {
  if (!VIEWS.includes(view)) return;
  if (current === "settings" && view !== "settings" && settingsDirty) {
    // Edits are never dropped without a word.
    confirmDialog("Leave Settings without saving?", "Your changes to the settings are not saved yet.", "Discard changes").then((leave) => {
      if (leave) {
        markSettings(false);
        show(view);
      }
    });
    return;
  }
  current = view;
  for (const v of VIEWS) $("view-" + v).hidden = v !== view;
  for (const b of document.querySelectorAll(".nav")) {
    b.classList.toggle("active", b.dataset.view === view);
    if (b.dataset.view === view) b.setAttribute("aria-current", "page"); else b.removeAttribute("aria-current");
  }
  if (view !== "pair") stopPairTimer();
  if (view === "settings") markSettings(false); // opening Settings shows what is saved
  refresh(view);
  // The heading, so a screen reader says where the owner now is and Tab goes on from there.
  focusView();
}

function refresh(view) {
  switch (view) {
    case "requests": return renderRequests();
    case "allowlists": return renderAllowlists();
    case "devices": return renderDevices();
    case "pair": return renderPair(false);
    case "activity": return renderActivity();
    case "settings": return renderSettings(false);
    case "guide": return renderOpenClaw();
  }
}

// ------------------------------------------------------------------ status

async function renderStatus() {
  const s = await act("app_status");
  if (!s) return;
  status = s;
  const g = s.gateway || {};
  const a = s.attach;
  const box = $("gateway-status");
  if (a) {
    box.querySelector(".text").textContent = a.line;
    box.querySelector(".dot").className = "dot " + (a.attached ? "ok" : "bad");
  } else {
    // The reason is in the banner above every view; the sidebar stays short.
    box.querySelector(".text").textContent = g.listening ? "Gateway on " + g.address : g.error ? "Gateway not running" : "Gateway starting…";
    box.querySelector(".dot").className = "dot " + (g.listening ? "ok" : g.error ? "bad" : "");
  }
  // Not running (and not attached): said in every view, with the two ways out.
  const down = !a && !g.listening && !!g.error;
  $("gateway-banner").hidden = !down;
  if (down) $("gateway-banner-reason").textContent = g.error.charAt(0).toUpperCase() + g.error.slice(1).replace(/\.?$/, ".");
  $("attached-note").hidden = !a;
  if (a) {
    $("attached-line").textContent = a.line + " — what differs";
    $("attached-limits").replaceChildren(...(a.limits || []).map((t) => el("li", { text: t })));
  }
  box.title = down ? g.error : box.querySelector(".text").textContent;
  $("paused-status").hidden = !s.paused;
  const badge = $("badge-requests");
  badge.replaceChildren(String(s.pending), el("span", { class: "visually-hidden", text: " waiting" }));
  badge.hidden = !s.pending;
  document.title = s.pending ? "ClawPair (" + s.pending + ")" : "ClawPair";
  $("guide-state-dir").textContent = s.stateDir;
  $("settings-file").textContent = s.stateDir + "/clawpair.json";
}

// ------------------------------------------------------------------ requests

function metaName(meta) {
  if (!meta) return "";
  const user = meta.username ? "@" + meta.username : "";
  const full = [meta.firstName, meta.lastName].filter(Boolean).join(" ") || meta.name || "";
  return [full, user].filter(Boolean).join(" ");
}

/** Who sent a DM request, as the buttons name them: "@dave on telegram". */
function dmSubject(r) {
  return (metaName(r.meta) || r.id) + " on " + r.channel + (r.accountId !== "default" ? " (account " + r.accountId + ")" : "");
}

/** Which device asks, as the buttons name it: "Pixel 9 Pro (node)". */
function deviceSubject(r) {
  return r.name + " (" + r.role + ")";
}

function dmCard(r) {
  const key = r.channel + ":" + r.accountId + ":" + r.code;
  const subject = dmSubject(r);
  // Only a channel that can send says "you are approved": the built-in Telegram bot when it
  // is set up (a bridge for another channel sends its own).
  const noBot = !(status && status.attach) && r.channel === "telegram" && !(status && status.telegram && status.telegram.configured);
  const notifyWhy = noBot ? "No Telegram bot is set up (Settings → Telegram bot), so the sender cannot be told" : "";
  const notify = el("input", { type: "checkbox", id: "notify-" + r.channel + "-" + r.code, "aria-label": "Notify sender: " + subject + (noBot ? " (unavailable: " + notifyWhy + ")" : ""), "data-focus-key": "notify-dm:" + key, disabled: noBot, title: notifyWhy || null });
  const name = metaName(r.meta);
  return el("article", { class: "card", "data-code": r.code, "data-channel": r.channel },
    el("div", { class: "card-main" },
      el("div", { class: "title" }, el("span", { class: "chip", text: r.channel }), " ",
        el("strong", { text: name || r.id }), name ? el("span", { class: "muted", text: " · id " + r.id }) : null),
      // Attached to OpenClaw, requests are named by its request id (its protocol does not
      // show the code the sender got).
      status && status.attach
        ? el("div", { class: "line muted small", text: "OpenClaw request " + r.code.slice(0, 10) + "…" })
        : el("div", { class: "line" }, "Code ", el("code", { class: "code", text: r.code }),
        r.accountId !== "default" ? el("span", { class: "muted", text: " · account " + r.accountId }) : null),
      el("div", { class: "muted small", text: "Requested " + ago(iso(r.createdAt)) + " · last message " + ago(iso(r.lastSeenAt)) + " · expires " + until(iso(r.expiresAt)) }),
      r.invalidName ? el("div", { class: "line warn", text: "Its pairing file names an account that is not a valid name, so it cannot be approved: reject it, or correct the file." }) : null),
    el("div", { class: "card-actions" },
      el("label", { class: "check small" + (noBot ? " muted" : ""), title: notifyWhy || null }, notify, noBot ? "Notify sender (no bot set up)" : "Notify sender"),
      el("button", { class: "primary", "data-action": "approve-dm", "aria-label": "Approve " + subject, "data-focus-key": "approve-dm:" + key, disabled: !!r.invalidName, onclick: async () => {
        const res = await act("approve_dm", { channel: r.channel, code: r.code, notify: notify.checked }, "Approved " + (name || r.id));
        if (res) renderRequests();
      } }, "Approve"),
      el("button", { "data-action": "reject-dm", "aria-label": "Reject " + subject, "data-focus-key": "reject-dm:" + key, onclick: async () => {
        const res = await act("reject_dm", { channel: r.channel, code: r.code }, "Rejected " + (name || r.id));
        if (res) renderRequests();
      } }, "Reject")));
}

function deviceCard(r) {
  const name = r.name;
  const admin = (r.scopes || []).includes("operator.admin");
  const subject = deviceSubject(r);
  const approve = (withoutAdmin, label) => el("button", {
    class: withoutAdmin || !admin ? "primary" : "",
    "data-action": admin ? (withoutAdmin ? "approve-device-limited" : "approve-device-full") : "approve-device",
    "aria-label": label + (admin ? ": " : " ") + subject,
    "data-focus-key": "approve-device:" + withoutAdmin + ":" + r.requestId,
    onclick: async () => {
      const res = await act("approve_device", { requestId: r.requestId, withoutAdmin }, "Approved " + name + (withoutAdmin ? " without admin" : ""));
      if (res) renderRequests();
    } }, label);
  return el("article", { class: "card", "data-request": r.requestId },
    el("div", { class: "card-main" },
      el("div", { class: "title" }, el("span", { class: "chip", text: r.kind || "new device" }), " ",
        el("strong", { text: name }),
        el("span", { class: "muted", text: [r.platform, r.remoteIp].filter(Boolean).map((x) => " · " + x).join("") })),
      el("div", { class: "line" }, "Fingerprint ", el("code", { class: "fingerprint", text: r.fingerprint })),
      admin ? el("div", { class: "line warn", text: "Asks for full access (operator.admin): it could approve other devices and change settings." }) : null,
      el("div", { class: "muted small", text: "Role " + r.role + (r.scopes && r.scopes.length ? " (" + r.scopes.join(", ") + ")" : "") +
        " · " + (r.reason || "") + " · requested " + ago(r.ts) + " · expires " + until(r.expiresAtMs) })),
    el("div", { class: "card-actions" },
      admin ? approve(true, "Approve without admin") : null,
      approve(false, admin ? "Approve full access" : "Approve"),
      el("button", { "data-action": "reject-device", "aria-label": "Reject " + subject, "data-focus-key": "reject-device:" + r.requestId, onclick: async () => {
        const res = await act("reject_device", { requestId: r.requestId }, "Rejected " + name);
        if (res) renderRequests();
      } }, "Reject")));
}

async function renderRequests() {
  const r = await act("list_requests");
  if (!r) return;
  const dm = r.dm || [];
  const dev = r.devices || [];
  $("dm-count").textContent = dm.length ? "(" + dm.length + ")" : "";
  $("device-count").textContent = dev.length ? "(" + dev.length + ")" : "";
  noteRequests(r);
  replaceKeepingFocus($("dm-list"), dm.length ? dm.map(dmCard) : [el("p", { class: "empty", text: "No chat senders are waiting." })]);
  replaceKeepingFocus($("device-list"), dev.length ? dev.map(deviceCard) : [el("p", { class: "empty", text: "No devices are waiting." })]);
  $("drop-note").hidden = !drops;
  $("drop-note").textContent = drops + " more sender" + (drops === 1 ? " was" : "s were") + " ignored because three requests were already waiting.";
}

/** Announces the requests that were not in the last list (none on the first). */
function noteRequests(r) {
  const fresh = [];
  const seen = new Set();
  for (const d of r.dm || []) {
    const k = "dm:" + d.channel + ":" + d.accountId + ":" + d.code;
    seen.add(k);
    if (knownRequests && !knownRequests.has(k)) fresh.push("New chat sender waiting: " + dmSubject(d));
  }
  for (const d of r.devices || []) {
    const k = "device:" + d.requestId;
    seen.add(k);
    if (knownRequests && !knownRequests.has(k)) fresh.push("New device waiting: " + deviceSubject(d) + (d.platform ? ", " + d.platform : ""));
  }
  knownRequests = seen;
  for (const m of fresh) announce(m);
}

/** Lists the requests only to announce what is new (when another view is showing). */
async function watchRequests() {
  const r = await act("list_requests");
  if (r) noteRequests(r);
}

/** A table with a caption (said first by screen readers) and column headers. */
function table(cls, caption, headers, rows) {
  return el("table", { class: cls },
    el("caption", { class: "visually-hidden", text: caption }),
    el("thead", {}, el("tr", {}, ...headers.map((h) => el("th", { scope: "col" }, h || el("span", { class: "visually-hidden", text: "Actions" }))))),
    el("tbody", {}, ...rows));
}

// ------------------------------------------------------------------ allowlists

async function renderAllowlists() {
  const r = await act("list_allowlist");
  if (!r) return;
  const q = $("allow-search").value.trim().toLowerCase();
  const entries = (r.entries || []).filter((e) => !q || [e.channel, e.accountId, e.senderId, e.label, e.approvedVia].some((x) => x && x.toLowerCase().includes(q)));
  const groups = new Map();
  for (const e of entries) {
    const k = e.channel + (e.accountId === "default" ? "" : " · " + e.accountId);
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k).push(e);
  }
  const out = [];
  for (const [k, list] of groups) {
    out.push(el("h2", { text: k + " (" + list.length + ")" }));
    out.push(el("div", { class: "table-wrap" }, table("table", "Senders allowed on " + k, ["Sender", "Label", "Approved", "Via", "Last message", ""],
      list.map((e) => el("tr", { "data-sender": e.senderId },
        el("td", {}, el("code", { text: e.senderId })),
        el("td", { text: e.label || "—" }),
        el("td", { text: date(iso(e.approvedAt)) }),
        el("td", { text: e.approvedVia || "—" }),
        el("td", { text: e.lastMessageAt ? ago(iso(e.lastMessageAt)) : "—" }),
        el("td", { class: "right" }, e.readOnly ? el("span", { class: "muted small", title: e.removeWith || "", text: "in OpenClaw" }) : el("button", { class: "small", "data-action": "remove-sender",
          "aria-label": "Remove " + e.senderId + (e.label ? " (" + e.label + ")" : "") + " from " + k,
          "data-focus-key": "remove-sender:" + e.channel + ":" + e.accountId + ":" + e.senderId, onclick: async () => {
            if (!(await confirmDialog("Remove " + e.senderId + "?", "They will get a new pairing code the next time they write.", "Remove"))) return;
            if (await act("allow_remove", { channel: e.channel, senderId: e.senderId, accountId: e.accountId }, "Removed " + e.senderId)) renderAllowlists();
          } }, "Remove")))))));
  }
  if (!out.length) out.push(el("p", { class: "empty", text: q ? "No sender matches \u201c" + q + "\u201d." : "Nobody is allowed yet. Approve a request, or add a sender below." }));
  replaceKeepingFocus($("allow-groups"), out);
}

// ------------------------------------------------------------------ devices

async function renderDevices() {
  const r = await act("list_devices");
  if (!r) return;
  const list = r.paired || [];
  if (!list.length) {
    replaceKeepingFocus($("devices-table"), [el("p", { class: "empty", text: "No devices are paired. Use \u201cPair a phone\u201d to add one." })]);
    disableKeepingFocus($("devices-clear"), true);
    return;
  }
  disableKeepingFocus($("devices-clear"), false);
  replaceKeepingFocus($("devices-table"), [el("div", { class: "table-wrap" }, table("table", "Paired devices", ["Name", "Platform", "Fingerprint", "Roles", "IP", "Paired", "Last seen", ""],
    list.map((d) => {
      const roles = (d.tokens || []).map((t) => t.role + (t.revokedAtMs ? " (revoked)" : ""));
      const name = d.name;
      const many = (d.roles || []).length > 1;
      // One Rotate and one Revoke per role the device holds.
      const roleButtons = (d.roles || []).flatMap((role) => {
        const token = (d.tokens || []).find((t) => t.role === role);
        const revoked = Boolean(token && token.revokedAtMs);
        return [
          el("button", { class: "small", "data-action": "rotate", "data-role": role, title: "A new " + role + " token; the old one stops working", "aria-label": many ? "Rotate " + role + " token of " + name : "Rotate " + name + " (" + role + ")",
            "data-focus-key": "rotate:" + d.deviceId + ":" + role, onclick: async () => {
            if (!(await confirmDialog("Rotate the " + role + " token of " + name + "?", "The old token stops working and the device is disconnected. You get the new token once, to give to the device.", "Rotate"))) return;
            const t = await act("token_rotate", { deviceId: d.deviceId, role });
            if (t) {
              const copy = el("button", { type: "button", class: "small", "data-action": "copy-token", onclick: async () => {
                await copyText(t.token);
                copy.textContent = "Copied";
              } }, "Copy token");
              infoDialog("New " + role + " token", el("div", {},
                el("p", { text: "Shown once. Give it to " + name + " (copy it, or let its camera read the code); ClawPair keeps only its hash." }),
                el("p", {}, el("code", { class: "token", text: t.token })),
                t.qrSvg ? el("img", { class: "token-qr", alt: "QR code with the new token", src: "data:image/svg+xml;base64," + btoa(t.qrSvg) }) : null,
                el("p", {}, copy)));
            }
            renderDevices();
          } }, many ? "Rotate " + role : "Rotate"),
          el("button", { class: "small", "data-action": "revoke", "data-role": role, title: "Take the " + role + " role back until you approve it again", disabled: revoked || undefined, "aria-label": many ? "Revoke " + role + " token of " + name : "Revoke " + name + " (" + role + ")",
            "data-focus-key": "revoke:" + d.deviceId + ":" + role, onclick: async () => {
            if (!(await confirmDialog("Revoke the " + role + " token of " + name + "?", "The device is disconnected at once. It cannot use the " + role + " role again, whatever token or setup code it presents, until you approve a new request for it.", "Revoke"))) return;
            if (await act("token_revoke", { deviceId: d.deviceId, role }, "Revoked the " + role + " token of " + name)) renderDevices();
          } }, many ? "Revoke " + role : "Revoke"),
        ];
      });
      return el("tr", { "data-device": d.deviceId },
        el("td", {}, el("strong", { text: name })),
        el("td", { text: d.platform || "—" }),
        el("td", {}, el("code", { class: "fingerprint", text: d.fingerprint })),
        el("td", { text: (roles.length ? roles : d.roles || []).join(", ") || "—" }),
        el("td", { text: d.remoteIp || "—" }),
        el("td", { text: date(d.approvedAtMs) }),
        el("td", {}, ago(d.lastSeenAtMs), d.stale ? el("span", { class: "chip warn-chip", title: "Not seen for longer than Settings allow", text: "stale" }) : null),
        el("td", { class: "right nowrap" },
          ...roleButtons,
          el("button", { class: "small danger", "data-action": "remove-device", title: "Forget the device: it must pair again", "aria-label": "Remove " + name, "data-focus-key": "remove-device:" + d.deviceId, onclick: async () => {
            if (!(await confirmDialog("Remove " + name + "?", "It is disconnected at once and must be paired again to come back.", "Remove"))) return;
            if (await act("device_remove", { deviceId: d.deviceId }, "Removed " + name)) renderDevices();
          } }, "Remove")));
    })))]);
}

// ------------------------------------------------------------------ pair a phone

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
  $("pair-countdown").textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
}

/** The URL phones reach OpenClaw's gateway at, given in this window while attached. */
let attachedPairUrl = null;

async function renderPair(fresh) {
  if (!fresh && pairExpires > Date.now() && !$("pair-code").hidden) {
    if (!pairTimer) pairTimer = setInterval(tickPair, 1000);
    return;
  }
  const r = await act("setup_create", status && status.attach && attachedPairUrl ? { url: attachedPairUrl } : {});
  if (!r) return;
  showPair(r);
}

function showPair(r) {
  stopPairTimer();
  $("pair-error").hidden = true;
  const warnings = (!r.error && r.warnings) || [];
  $("pair-warnings").hidden = !warnings.length;
  $("pair-warnings-list").replaceChildren(...warnings.map((w) => el("li", { text: w.charAt(0).toUpperCase() + w.slice(1) + "." })));
  if (r.error) {
    $("pair-code").hidden = true;
    $("pair-loopback").hidden = !r.loopbackOnly;
    // Attached to OpenClaw: its gateway's reason, and a URL phones can reach is the way out.
    $("pair-expose-box").hidden = !!r.attached;
    $("pair-loopback-title").textContent = r.attached ? "OpenClaw's gateway gave no setup code" : "Your gateway only listens on this computer";
    $("pair-loopback-text").hidden = !!r.attached;
    $("pair-attached-text").hidden = !r.attached;
    if (r.attached) $("pair-attached-text").textContent = r.error + " Give a URL phones can reach:";
    if (!r.loopbackOnly) {
      $("pair-error").textContent = r.error;
      $("pair-error").hidden = false;
    }
    return;
  }
  $("pair-loopback").hidden = true;
  $("pair-code").hidden = false;
  // OpenClaw's protocol cannot invalidate its codes (they expire on their own).
  $("pair-invalidate").hidden = !!(status && status.attach);
  $("pair-qr").src = "data:image/svg+xml;base64," + btoa(r.qrSvg);
  $("pair-qr").classList.remove("expired");
  $("pair-setup-code").textContent = r.setupCode;
  $("pair-url-used").textContent = r.url;
  pairExpires = r.expiresAtMs - ((r.now || Date.now()) - Date.now());
  tickPair();
  pairTimer = setInterval(tickPair, 1000);
}

async function copyText(text) {
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

// ------------------------------------------------------------------ activity

/** Long ids shortened (the full value is in the audit log file). */
function shortValue(v) {
  if (typeof v !== "string") return JSON.stringify(v);
  if (/^[0-9a-f-]{24,}$/.test(v)) return v.slice(0, 12) + "…";
  return v;
}

function describe(e) {
  const d = Object.assign({}, e);
  for (const k of ["ts", "tsMs", "action", "via", "credential", "expiresAtMs"]) delete d[k];
  return Object.entries(d).map(([k, v]) => k + " " + shortValue(v)).join(" · ");
}

async function renderActivity() {
  const r = await act("audit_tail", { limit: 500 });
  if (!r) return;
  const q = $("activity-search").value.trim().toLowerCase();
  const kind = $("activity-kind").value;
  const entries = (r.entries || []).slice().reverse()
    .filter((e) => !kind || e.action.startsWith(kind))
    .filter((e) => !q || JSON.stringify(e).toLowerCase().includes(q));
  const shown = entries.slice(0, 300);
  replaceKeepingFocus($("activity-list"), entries.length ? [el("div", { class: "table-wrap" }, table("table activity", "Activity, newest first (" + shown.length + " shown)", ["When", "What happened"],
    shown.map((e) => el("tr", { class: e.action === "store.corrupt" ? "bad" : "" },
      el("td", { class: "nowrap", text: date(e.tsMs) }),
      el("td", { class: "what" },
        el("span", { class: "sentence", text: e.sentence || (e.action + (describe(e) ? ": " + describe(e) : "")) }),
        // The record as it is in the log, one click away.
        el("details", { class: "record" }, el("summary", { text: "Record" }),
          el("pre", { text: JSON.stringify(e, (k, v) => (k === "sentence" ? undefined : v), 2) })))))))] : [el("p", { class: "empty", text: "Nothing recorded yet." })]);
}

// ------------------------------------------------------------------ settings

function renderTelegramStatus() {
  const tg = status && status.telegram;
  $("set-tg-status").textContent = !tg || !tg.configured ? "Off: enable it and give a bot token to start the bot." :
    tg.connected ? "Connected to Telegram." : tg.error ? "Not connected: " + tg.error : "Connecting…";
}

/** The OpenClaw section of Settings and the guide's offer: what is installed, and whether
 * ClawPair is attached to it. */
async function renderOpenClaw() {
  const o = await act("openclaw_info");
  if (!o) return;
  $("set-oc-found").textContent = o.found
    ? "OpenClaw is installed here (" + o.stateDir + "), its gateway at " + o.url + (o.tokenInConfig ? "; its config holds the token, which ClawPair reads each time and never copies." : "; its config has no token ClawPair can read: type it below.")
    : "No OpenClaw installation found on this computer" + (o.problem ? " (" + o.problem.replace(/^no OpenClaw installation here \((.*)\)$/, "$1") + ")" : "") + ". To attach to a gateway elsewhere, give its URL and token.";
  $("set-oc-url").value = o.attach.url || "";
  $("set-oc-pin").value = o.attach.tlsFingerprint || "";
  $("set-oc-token").value = "";
  $("set-oc-token").placeholder = o.attach.tokenSet ? "A token is stored (type to replace it)" : "";
  $("set-oc-attach").hidden = o.attach.enabled;
  $("set-oc-detach").hidden = !o.attach.enabled;
  $("set-oc-status").textContent = status && status.attach ? status.attach.line : "ClawPair runs its own gateway.";
  $("guide-openclaw").hidden = !o.found || o.attach.enabled;
  $("guide-openclaw-url").textContent = o.url || "";
}

async function setAttach(enabled) {
  const r = await act("set_attach", { enabled, url: $("set-oc-url").value.trim() || null, token: $("set-oc-token").value || null,
    tlsFingerprint: $("set-oc-pin").value.trim() || null },
    enabled ? "Attaching to OpenClaw" : "Detached: ClawPair runs its own gateway");
  await renderStatus();
  renderOpenClaw();
  return r;
}

/** Whether Settings holds edits not saved yet: said beside Save, with a way to drop them. */
function markSettings(dirty) {
  settingsDirty = dirty;
  $("settings-unsaved").textContent = dirty ? "Unsaved changes" : "";
  $("settings-discard").hidden = !dirty;
}

async function renderSettings(force) {
  renderTelegramStatus();
  renderOpenClaw();
  if (settingsDirty && !force) return;
  const s = await act("get_settings");
  if (!s || (settingsDirty && !force)) return;
  $("set-bind").value = s.bind;
  const known = ["127.0.0.1", "0.0.0.0"].includes(s.bind);
  $("set-bind-choice").value = known ? s.bind : "custom";
  $("set-bind-custom").hidden = known;
  markSettings(false);
  $("set-port").value = s.port;
  $("set-public-url").value = s.publicUrl || "";
  $("set-dm-ttl").value = s.pairingTtlMinutes;
  $("set-dm-max").value = s.pairingMaxPending;
  $("set-dev-ttl").value = s.devicePendingTtlMinutes;
  $("set-setup-ttl").value = s.setupCodeTtlMinutes;
  $("set-stale-days").value = s.staleAfterDays || "";
  $("set-expire-stale").checked = !!s.expireStale;
  $("set-tg-enabled").checked = s.telegram.enabled;
  $("set-tg-token").value = "";
  $("set-tg-token").placeholder = s.telegram.botTokenSet ? "A token is stored (type to replace it)" : "123456:ABC… from @BotFather";
  $("set-tg-owners").value = (s.telegram.owners || []).join(", ");
  $("set-notifications").checked = s.notifications;
  $("set-autostart").checked = s.startAtLogin;
  $("set-paused").checked = !!(status && status.paused);
  const channels = s.channels.length ? s.channels : [{ name: "telegram", dmPolicy: "pairing" }];
  replaceKeepingFocus($("set-policies"), [el("p", { class: "label", text: "Who may write, per channel" }),
    ...channels.map((c) => el("label", { class: "policy" }, el("span", { text: c.name }),
      el("select", { "data-channel": c.name, "data-focus-key": "policy:" + c.name },
        ...[["pairing", "Pairing: strangers get a code"], ["allowlist", "Allowlist only: no codes"], ["open", "Open: everyone"], ["disabled", "Disabled: ignore all DMs"]]
          .map(([v, t]) => el("option", { value: v, selected: v === c.dmPolicy, text: t })))))]);
  markSettings(false);
}

async function saveSettings(ev) {
  ev.preventDefault();
  const policies = {};
  for (const s of document.querySelectorAll("#set-policies select")) policies[s.dataset.channel] = s.value;
  const patch = {
    bind: $("set-bind-choice").value === "custom" ? $("set-bind").value.trim() : $("set-bind-choice").value,
    port: Number($("set-port").value),
    publicUrl: $("set-public-url").value.trim(),
    pairingTtlMinutes: Number($("set-dm-ttl").value),
    pairingMaxPending: Number($("set-dm-max").value),
    devicePendingTtlMinutes: Number($("set-dev-ttl").value),
    setupCodeTtlMinutes: Number($("set-setup-ttl").value),
    staleAfterDays: $("set-stale-days").value.trim() ? Number($("set-stale-days").value) : 0,
    expireStale: $("set-expire-stale").checked,
    dmPolicies: policies,
    telegramEnabled: $("set-tg-enabled").checked,
    telegramBotToken: $("set-tg-token").value,
    telegramOwners: $("set-tg-owners").value.split(",").map((x) => x.trim()).filter(Boolean),
    notifications: $("set-notifications").checked,
  };
  try {
    await invoke("save_settings", { patch });
    $("settings-error").hidden = true;
    const wantAuto = $("set-autostart").checked;
    if (wantAuto !== !!(status && status.startAtLogin)) await act("set_autostart", { enabled: wantAuto });
    const wantPause = $("set-paused").checked;
    if (wantPause !== !!(status && status.paused)) await act("set_paused", { paused: wantPause });
    toast("Settings saved", "ok");
    markSettings(false);
    await renderStatus();
    renderSettings(true);
  } catch (e) {
    $("settings-error").textContent = (e && e.message) || String(e);
    $("settings-error").hidden = false;
    $("settings-error").scrollIntoView({ block: "nearest" });
  }
}

// ------------------------------------------------------------------ live updates

function onCoreEvent(ev) {
  const { event } = ev.payload || {};
  if (!event) return;
  if (event === "pairing.dropped") drops += 1;
  const entry = (ev.payload && ev.payload.payload) || {};
  if (event === "audit.appended" && entry.action === "dm.notified" && entry.delivered === false) {
    toast("Approved, but " + (entry.channel || "the chat") + " did not deliver the confirmation to " + (entry.senderId || "the sender") + ": tell them yourself.", "bad");
  }
  const touches = {
    requests: /^(pairing\.|device\.pair\.|settings\.)/,
    allowlists: /^(allowlist\.|pairing\.resolved)/,
    devices: /^(device\.)/,
    activity: /^(audit\.appended)/,
    settings: /^(settings\.|channel\.status)/,
    pair: /^(setup\.changed|gateway\.status)/,
  };
  if (/^(pairing\.|device\.pair\.|gateway\.status|settings\.|channel\.status|attach\.status)/.test(event)) renderStatus();
  if (event === "attach.status" && current !== "pair") refresh(current);
  // On Requests the re-render below announces them.
  if (current !== "requests" && (event === "pairing.requested" || event === "device.pair.requested")) watchRequests();
  const re = touches[current];
  if (re && re.test(event)) {
    if (current === "pair") {
      if (event === "gateway.status" && !$("pair-loopback").hidden) renderPair(true);
    } else refresh(current);
  }
}

// ------------------------------------------------------------------ theme

function applyTheme(t) {
  document.documentElement.dataset.theme = t;
  $("theme-toggle").textContent = "Theme: " + t;
}

function cycleTheme() {
  const order = ["system", "light", "dark"];
  const next = order[(order.indexOf(document.documentElement.dataset.theme || "system") + 1) % order.length];
  localStorage.setItem("theme", next);
  applyTheme(next);
  announce("Theme: " + next);
}

// ------------------------------------------------------------------ start

async function start() {
  applyTheme(localStorage.getItem("theme") || "system");
  for (const b of document.querySelectorAll(".nav")) b.addEventListener("click", () => show(b.dataset.view));
  document.addEventListener("keydown", (e) => {
    if (e.altKey && e.key >= "1" && e.key <= "6") {
      show(["requests", "allowlists", "devices", "pair", "activity", "settings"][Number(e.key) - 1]);
      e.preventDefault();
    }
  });
  $("theme-toggle").addEventListener("click", cycleTheme);
  $("dialog").addEventListener("keydown", trapFocus);
  $("guide-done").addEventListener("click", async () => { await act("dismiss_guide"); show("requests"); });
  $("guide-attach").addEventListener("click", async () => { await setAttach(true); await act("dismiss_guide"); show("requests"); });
  $("set-oc-attach").addEventListener("click", () => setAttach(true));
  $("set-oc-detach").addEventListener("click", () => setAttach(false));
  $("set-show-guide").addEventListener("click", async () => { await act("show_guide"); show("guide"); });
  $("set-rotate-token").addEventListener("click", async () => {
    if (!(await confirmDialog("Replace the gateway's admin token?", "Everything using the old token (a script, a channel bridge, another computer's CLI) is disconnected at once and refused from then on. This computer's CLI and app use the new one by themselves.", "Replace"))) return;
    await act("rotate_admin_token", {}, "Replaced the admin token; the old one is refused");
  });
  $("set-open-logs").addEventListener("click", async () => {
    const r = await act("open_logs");
    if (r) toast("Logs are in " + r.path, "ok");
  });
  $("allow-search").addEventListener("input", renderAllowlists);
  $("allow-add-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const account = $("allow-add-account").value.trim() || null;
    const ok = await act("allow_add", { channel: $("allow-add-channel").value.trim(), senderId: $("allow-add-sender").value.trim(), accountId: account }, "Allowed " + $("allow-add-sender").value.trim());
    if (ok) { $("allow-add-sender").value = ""; renderAllowlists(); }
  });
  $("devices-clear").addEventListener("click", async () => {
    if (!(await confirmDialog("Remove every paired device?", "All of them are disconnected at once and must be paired again.", "Remove all"))) return;
    const r = await act("device_clear");
    if (r) { toast("Removed " + r.removed + " devices", "ok"); renderDevices(); }
  });
  $("pair-new").addEventListener("click", () => renderPair(true));
  $("pair-copy").addEventListener("click", () => copyText($("pair-setup-code").textContent));
  $("pair-invalidate").addEventListener("click", async () => {
    const r = await act("setup_cleanup");
    if (r) {
      toast("Invalidated " + r.removed + " code" + (r.removed === 1 ? "" : "s") + " not used yet", "ok");
      pairExpires = 0;
      stopPairTimer();
      $("pair-countdown").textContent = "Invalidated — make a new code";
      $("pair-qr").classList.add("expired");
    }
  });
  $("pair-expose").addEventListener("click", async () => {
    const r = await act("expose_on_lan");
    if (r) { await renderStatus(); renderPair(true); }
  });
  $("pair-url-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const url = $("pair-url").value.trim();
    if (!url) return;
    if (status && status.attach) {
      // Attached: the URL goes to OpenClaw with each code (ClawPair's settings are not its).
      attachedPairUrl = url;
      renderPair(true);
    } else if (await act("save_settings", { patch: { publicUrl: url } })) renderPair(true);
  });
  $("activity-search").addEventListener("input", renderActivity);
  $("activity-kind").addEventListener("change", renderActivity);
  $("gateway-retry").addEventListener("click", async (e) => {
    const b = e.currentTarget;
    b.disabled = true;
    try {
      const r = await invoke("retry_gateway");
      if (r && r.gateway && r.gateway.listening) toast("Gateway on " + r.gateway.address, "ok");
      else toast("Still not running: " + ((r && r.gateway && r.gateway.error) || "unknown reason"), "bad");
    } catch (err) {
      toast((err && err.message) || String(err), "bad");
    } finally {
      b.disabled = false;
      await renderStatus();
    }
  });
  $("gateway-change-port").addEventListener("click", async () => {
    show("settings");
    await renderSettings(true);
    $("set-port").focus();
    $("set-port").select();
  });
  $("settings-form").addEventListener("submit", saveSettings);
  $("settings-form").addEventListener("input", () => markSettings(true));
  $("settings-form").addEventListener("change", () => markSettings(true));
  $("set-bind-choice").addEventListener("change", () => {
    const custom = $("set-bind-choice").value === "custom";
    $("set-bind-custom").hidden = !custom;
    if (custom) $("set-bind").focus();
  });
  $("settings-discard").addEventListener("click", () => {
    $("settings-error").hidden = true;
    renderSettings(true);
  });

  await tauri.event.listen("clawpair://event", onCoreEvent);
  await tauri.event.listen("clawpair://navigate", (e) => show(e.payload));
  await renderStatus();
  show(status && status.showGuide ? "guide" : "requests");
  if (current !== "requests") watchRequests(); // what waits at start is not news
}

document.addEventListener("DOMContentLoaded", start);
