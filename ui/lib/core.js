// The app's commands: `invoke` as Tauri gives it, and `act`, which says what went wrong.
import { toast } from "./dom.js";

export const tauri = window.__TAURI__;
export const invoke = (cmd, args) => tauri.core.invoke(cmd, args);

/** Runs a command; shows its one-line error instead of failing silently. */
export async function act(cmd, args, okMsg) {
  try {
    const r = await invoke(cmd, args);
    if (okMsg) toast(okMsg, "ok");
    return r;
  } catch (e) {
    toast(e?.message || String(e), "bad");
    return null;
  }
}
