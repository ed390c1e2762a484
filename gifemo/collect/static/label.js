// Labelling page: next candidate, yes/no/skip by button or key, live progress.
const app = document.getElementById("app");
const cid = app.dataset.campaign;
let current = null;   // gif_id on screen
let busy = false;
let mine = 0;

function setText(id, v) { document.getElementById(id).textContent = v; }

function showStats(s) {
  setText("n-positive", s.n_positive); setText("target-np", s.target_np);
  setText("n-decided", s.n_decided); setText("n-candidates", s.n_candidates);
  setText("precision", pct(s.precision)); setText("n-judgements", s.n_judgements);
  document.getElementById("bar").style.width = Math.min(100, 100 * s.n_positive / s.target_np) + "%";
  if (s.agreement) {
    setText("agreement", s.agreement.n_pairs ? pct(s.agreement.pair_agreement) + " of " + s.agreement.n_pairs : "–");
    setText("kappa", s.agreement.kappa === null ? "–" : s.agreement.kappa.toFixed(2));
    setText("n-third", s.agreement.n_third);
  }
  if (s.looks_per_positive !== undefined) setText("lpp", s.looks_per_positive === null ? "–" : s.looks_per_positive.toFixed(2));
  if (s.replay && s.replay.k > 0) {
    const r = s.replay;
    const est = r.saved_estimate === null ? "?" : r.saved_estimate.toFixed(0);
    setText("saved", est + " (≥ " + (r.saved_at_least === null ? "?" : r.saved_at_least) + ") for " + r.k + " positives");
  }
  if (s.reranks) setText("reranks", s.reranks.length);
}

async function refreshStats() { showStats(await api("GET", "/api/campaigns/" + cid)); }

async function loadNext() {
  const n = await api("GET", "/api/campaigns/" + cid + "/next");
  const img = document.getElementById("gif");
  if (n.done) {
    current = null; img.hidden = true;
    const d = document.getElementById("done");
    d.hidden = false;
    d.textContent = n.reason === "complete" ? "Campaign complete: Np positives confirmed. Thank you!" : "Nothing left for you to label right now.";
    setText("gif-id", "–"); setText("gif-rank", "–");
  } else {
    current = n.gif_id; img.hidden = false; img.src = n.url;
    document.getElementById("done").hidden = true;
    setText("gif-id", n.gif_id); setText("gif-rank", n.rank);
  }
}

async function answer(a) {
  if (busy || current === null) return;
  busy = true; showError("");
  try {
    const r = await api("POST", "/api/campaigns/" + cid + "/judgements", {gif_id: current, answer: a});
    mine += 1; setText("mine", mine);
    setText("flash", a + " recorded for " + r.gif_id + (r.decided ? " — decided: " + (r.label ? "positive" : "negative") : ""));
    await loadNext();
    await refreshStats();
  } catch (e) { showError(e.message); await loadNext().catch(() => {}); }
  finally { busy = false; }
}

document.querySelectorAll("button[data-answer]").forEach(b => b.addEventListener("click", () => answer(b.dataset.answer)));
document.addEventListener("keydown", (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const k = ev.key.toLowerCase();
  if (k === "y") answer("yes"); else if (k === "n") answer("no"); else if (k === "s") answer("skip");
});
loadNext().then(refreshStats).catch(e => showError(e.message));
