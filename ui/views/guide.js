// The first-run guide: what ClawPair guards and how, and the offer to attach to an OpenClaw
// found on this computer.
import { act } from "../lib/core.js";
import { $ } from "../lib/dom.js";
import { navigate } from "../lib/nav.js";
import { renderOpenClaw, setAttach } from "./settings.js";

function wire() {
  $("guide-done").addEventListener("click", async () => {
    await act("dismiss_guide");
    navigate("requests");
  });
  $("guide-attach").addEventListener("click", async () => {
    await setAttach(true);
    await act("dismiss_guide");
    navigate("requests");
  });
  $("set-show-guide").addEventListener("click", async () => {
    await act("show_guide");
    navigate("guide");
  });
}

export const view = {
  name: "guide",
  render: renderOpenClaw,
  wire,
};
