// Pairwise page: "which of these two expresses <emotion> more?" left / right / neither.
const app = document.getElementById("app");
const cid = app.dataset.campaign;
let pair = null, busy = false, n = 0;

async function loadPair() {
  const p = await api("GET", "/api/campaigns/" + cid + "/pair");
  if (p.done) {
    pair = null; document.getElementById("done").hidden = false;
    ["left", "right"].forEach(s => { document.getElementById(s).hidden = true; document.getElementById(s + "-id").textContent = ""; });
    return;
  }
  pair = p;
  ["left", "right"].forEach(s => {
    const img = document.getElementById(s); img.hidden = false; img.src = p[s + "_url"];
    document.getElementById(s + "-id").textContent = p[s];
  });
}

async function vote(choice) {
  if (busy || pair === null) return;
  busy = true; showError("");
  try {
    await api("POST", "/api/campaigns/" + cid + "/votes", {left: pair.left, right: pair.right, choice});
    n += 1; document.getElementById("n-votes").textContent = n;
    await loadPair();
  } catch (e) { showError(e.message); }
  finally { busy = false; }
}

document.querySelectorAll("button[data-choice]").forEach(b => b.addEventListener("click", () => vote(b.dataset.choice)));
document.addEventListener("keydown", (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const k = ev.key.toLowerCase();
  if (k === "arrowleft" || k === "l") vote("left");
  else if (k === "arrowright" || k === "r") vote("right");
  else if (k === "arrowdown" || k === "n") vote("neither");
});
loadPair().catch(e => showError(e.message));
