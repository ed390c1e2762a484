// Shared helpers: JSON calls that surface the server's {"detail": ...} message.
async function api(method, url, body) {
  const opts = {method, headers: {"Accept": "application/json"}, credentials: "same-origin"};
  if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
  const r = await fetch(url, opts);
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (r.status === 401 && url !== "/api/session") { window.location = "/login"; throw new Error("not signed in"); }
  if (!r.ok) { throw new Error((data && data.detail) ? (typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail)) : r.statusText); }
  return data;
}
function showError(msg) { const e = document.getElementById("error"); if (e) e.textContent = msg || ""; }
function pct(x) { return (x === null || x === undefined) ? "–" : (100 * x).toFixed(0) + " %"; }
const so = document.getElementById("signout");
if (so) so.addEventListener("click", async (ev) => { ev.preventDefault(); await api("DELETE", "/api/session"); window.location = "/login"; });
