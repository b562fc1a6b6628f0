// Paired devices: their roles and tokens, with Rotate, Revoke and Remove, and Remove all.
import { act, actLatest } from "../lib/core.js";
import {
  $,
  confirmDialog,
  copyText,
  disableKeepingFocus,
  el,
  gatewayChip,
  infoDialog,
  replaceKeepingFocus,
  table,
  toast,
} from "../lib/dom.js";
import { ago, date } from "../lib/format.js";

async function renderDevices() {
  const r = await actLatest("list_devices");
  if (!r) return;
  const list = r.paired || [];
  if (!list.length) {
    replaceKeepingFocus($("devices-table"), [
      el("p", { class: "empty", text: "No devices are paired. Use \u201cPair a phone\u201d to add one." }),
    ]);
    disableKeepingFocus($("devices-clear"), true);
    return;
  }
  disableKeepingFocus($("devices-clear"), false);
  replaceKeepingFocus($("devices-table"), [
    el(
      "div",
      { class: "table-wrap" },
      table(
        "table",
        "Paired devices",
        ["Name", "Platform", "Fingerprint", "Roles", "IP", "Paired", "Last seen", ""],
        list.map((d) => {
          const roles = (d.tokens || []).map((t) => t.role + (t.revokedAtMs ? " (revoked)" : ""));
          const name = d.name;
          const many = (d.roles || []).length > 1;
          // One Rotate and one Revoke per role the device holds.
          const roleButtons = (d.roles || []).flatMap((role) => {
            const token = (d.tokens || []).find((t) => t.role === role);
            const revoked = Boolean(token?.revokedAtMs);
            return [
              el(
                "button",
                {
                  class: "small",
                  "data-action": "rotate",
                  "data-role": role,
                  title: `A new ${role} token; the old one stops working`,
                  "aria-label": many ? `Rotate ${role} token of ${name}` : `Rotate ${name} (${role})`,
                  "data-focus-key": `rotate:${d.deviceId}:${role}`,
                  onclick: async () => {
                    if (
                      !(await confirmDialog(
                        `Rotate the ${role} token of ${name}?`,
                        "The old token stops working and the device is disconnected. You get the new token once, to give to the device.",
                        "Rotate",
                      ))
                    )
                      return;
                    const t = await act("token_rotate", { deviceId: d.deviceId, role, gateway: d.gateway });
                    if (t) {
                      const copy = el(
                        "button",
                        {
                          type: "button",
                          class: "small",
                          "data-action": "copy-token",
                          onclick: async () => {
                            await copyText(t.token);
                            copy.textContent = "Copied";
                          },
                        },
                        "Copy token",
                      );
                      infoDialog(
                        `New ${role} token`,
                        el(
                          "div",
                          {},
                          el("p", {
                            text: `Shown once. Give it to ${name} (copy it, or let its camera read the code); ClawPair keeps only its hash.`,
                          }),
                          el("p", {}, el("code", { class: "token", text: t.token })),
                          t.qrSvg
                            ? el("img", {
                                class: "token-qr",
                                alt: "QR code with the new token",
                                src: `data:image/svg+xml;base64,${btoa(t.qrSvg)}`,
                              })
                            : null,
                          el("p", {}, copy),
                        ),
                      );
                    }
                    renderDevices();
                  },
                },
                many ? `Rotate ${role}` : "Rotate",
              ),
              el(
                "button",
                {
                  class: "small",
                  "data-action": "revoke",
                  "data-role": role,
                  title: `Take the ${role} role back until you approve it again`,
                  disabled: revoked || undefined,
                  "aria-label": many ? `Revoke ${role} token of ${name}` : `Revoke ${name} (${role})`,
                  "data-focus-key": `revoke:${d.deviceId}:${role}`,
                  onclick: async () => {
                    if (
                      !(await confirmDialog(
                        `Revoke the ${role} token of ${name}?`,
                        `The device is disconnected at once. It cannot use the ${role} role again, whatever token or setup code it presents, until you approve a new request for it.`,
                        "Revoke",
                      ))
                    )
                      return;
                    if (
                      await act(
                        "token_revoke",
                        { deviceId: d.deviceId, role, gateway: d.gateway },
                        `Revoked the ${role} token of ${name}`,
                      )
                    )
                      renderDevices();
                  },
                },
                many ? `Revoke ${role}` : "Revoke",
              ),
            ];
          });
          return el(
            "tr",
            { "data-device": d.deviceId },
            el("td", {}, el("strong", { text: name }), " ", gatewayChip(d)),
            el("td", { text: d.platform || "—" }),
            el("td", {}, el("code", { class: "fingerprint", text: d.fingerprint })),
            el("td", { text: (roles.length ? roles : d.roles || []).join(", ") || "—" }),
            el("td", { text: d.remoteIp || "—" }),
            el("td", { text: date(d.approvedAtMs) }),
            el(
              "td",
              {},
              ago(d.lastSeenAtMs),
              d.stale
                ? el("span", {
                    class: "chip warn-chip",
                    title: "Not seen for longer than Settings allow",
                    text: "stale",
                  })
                : null,
            ),
            el(
              "td",
              { class: "right nowrap" },
              ...roleButtons,
              el(
                "button",
                {
                  class: "small danger",
                  "data-action": "remove-device",
                  title: "Forget the device: it must pair again",
                  "aria-label": `Remove ${name}`,
                  "data-focus-key": `remove-device:${d.deviceId}`,
                  onclick: async () => {
                    if (
                      !(await confirmDialog(
                        `Remove ${name}?`,
                        "It is disconnected at once and must be paired again to come back.",
                        "Remove",
                      ))
                    )
                      return;
                    if (await act("device_remove", { deviceId: d.deviceId, gateway: d.gateway }, `Removed ${name}`))
                      renderDevices();
                  },
                },
                "Remove",
              ),
            ),
          );
        }),
      ),
    ),
  ]);
}

function wire() {
  $("devices-clear").addEventListener("click", async () => {
    if (
      !(await confirmDialog(
        "Remove every paired device?",
        "All of them are disconnected at once and must be paired again.",
        "Remove all",
      ))
    )
      return;
    const r = await act("device_clear");
    if (r) {
      toast(`Removed ${r.removed} devices`, "ok");
      renderDevices();
    }
  });
}

export const view = {
  name: "devices",
  shortcut: "3",
  touches: /^(device\.)/,
  render: renderDevices,
  wire,
};
