document.getElementById("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    await api("POST", "/api/session", {token: document.getElementById("token").value});
    window.location = "/";
  } catch (e) { showError(e.message); }
});
