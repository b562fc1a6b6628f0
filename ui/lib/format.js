// Times and names as the windows show them: "5m ago", "in 3m", a short date, "Ann Lee @ann".

export function ago(ms) {
  if (!ms) return "—";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function until(ms) {
  if (!ms) return "—";
  const s = Math.round((ms - Date.now()) / 1000);
  if (s <= 0) return "expired";
  if (s < 60) return `in ${s}s`;
  if (s < 3600) return `in ${Math.ceil(s / 60)}m`;
  return `in ${Math.floor(s / 3600)}h ${Math.round((s % 3600) / 60)}m`;
}

export function date(ms) {
  if (!ms) return "—";
  const d = new Date(ms);
  const sameYear = d.getFullYear() === new Date().getFullYear();
  return d.toLocaleString(undefined, {
    year: sameYear ? undefined : "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
  });
}

export const iso = (s) => (s ? Date.parse(s) : 0);

/** A chat sender's name from a request's metadata: "Ann Lee @ann" (empty when none). */
export function metaName(meta) {
  if (!meta) return "";
  const user = meta.username ? `@${meta.username}` : "";
  const full = [meta.firstName, meta.lastName].filter(Boolean).join(" ") || meta.name || "";
  return [full, user].filter(Boolean).join(" ");
}
