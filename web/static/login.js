// Login: POST /api/login (JSON); the server sets the HttpOnly session cookie.
document.getElementById("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("login-error");
  error.textContent = "";
  const response = await fetch("/api/login", {
    method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({
      username: document.getElementById("username").value,
      password: document.getElementById("password").value,
    }),
  });
  if (response.ok) {
    window.location.href = "/";
  } else {
    const body = await response.json().catch(() => ({}));
    error.textContent = response.status === 429 ? "Too many failed logins; wait a minute." : (body.detail || "Login failed");
  }
});
