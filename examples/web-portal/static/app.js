// The MFS web portal: vanilla JavaScript, no build step.
//
// The access token lives in the `accessToken` variable only: never in localStorage,
// sessionStorage or a cookie this page can read. The refresh token is the authority's
// __Host-gha-session cookie (HttpOnly), sent only to the authority's /session/* endpoints,
// which also require the X-GHA-CSRF header and this page's Origin.
"use strict";

(() => {
  let config = null;
  let accessToken = null;

  const $ = (id) => document.getElementById(id);

  function show(loggedIn, message) {
    $("login-form").hidden = loggedIn;
    $("session").hidden = !loggedIn;
    $("status").textContent = message;
    if (!loggedIn) {
      $("jobs").replaceChildren();
    }
  }

  // A session request: credentials (the cookie) included, plus the CSRF header.
  async function session(path, body) {
    const init = {
      method: "POST",
      credentials: "include",
      headers: { "X-GHA-CSRF": "1" },
    };
    if (body) {
      init.headers["Content-Type"] = "application/x-www-form-urlencoded";
      init.body = new URLSearchParams(body);
    }
    return fetch(config.authority + path, init);
  }

  async function takeToken(response) {
    const body = await response.json();
    if (!response.ok) {
      throw new Error(body.error_description || body.error || ("HTTP " + response.status));
    }
    accessToken = body.access_token;
  }

  async function refresh() {
    const response = await session("/session/refresh");
    if (!response.ok) {
      accessToken = null;
      return false;
    }
    await takeToken(response);
    return true;
  }

  async function listJobs() {
    let response = await fetch(config.api + "/jobs", {
      headers: { Authorization: "Bearer " + accessToken },
    });
    if (response.status === 401 && (await refresh())) {
      response = await fetch(config.api + "/jobs", {
        headers: { Authorization: "Bearer " + accessToken },
      });
    }
    if (!response.ok) {
      throw new Error("the jobs API answered " + response.status);
    }
    const jobs = await response.json();
    $("jobs").replaceChildren(
      ...jobs.map((job) => {
        const item = document.createElement("li");
        item.textContent = job.title + " (" + job.status + ")";
        return item;
      }),
    );
    $("status").textContent = "Logged in: " + jobs.length + " job(s)";
  }

  async function login(event) {
    event.preventDefault();
    $("status").textContent = "Logging in…";
    try {
      const response = await session("/session/login", {
        username: $("username").value,
        password: $("password").value,
      });
      $("password").value = "";
      await takeToken(response);
      show(true, "Logged in");
      await listJobs();
    } catch (error) {
      show(false, "Login failed: " + error.message);
    }
  }

  async function logout() {
    try {
      await session("/session/logout");
    } finally {
      accessToken = null;
      show(false, "Logged out");
    }
  }

  async function start() {
    config = await (await fetch("/config.json")).json();
    $("login-form").addEventListener("submit", login);
    $("logout").addEventListener("click", logout);
    $("refresh-jobs").addEventListener("click", () =>
      listJobs().catch((error) => { $("status").textContent = error.message; }));
    // Resume a session from the cookie, if there is one.
    if (await refresh().catch(() => false)) {
      show(true, "Session resumed");
      await listJobs().catch((error) => { $("status").textContent = error.message; });
    } else {
      show(false, "Please log in");
    }
  }

  start().catch((error) => { $("status").textContent = "Cannot start: " + error.message; });
})();
