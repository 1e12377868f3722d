// 总台受理 (/desk): the desk's window (call the next ticket, recall, done, send the citizen on
// keeping the number) and the case form: the matter found as one types (htmx), its materials
// ticked as received (the rest are missing), sent as JSON to POST /api/cases; the new case's
// card then offers its notices and its hand-off. Uses admin.js's send, showErrors, clearErrors.
"use strict";
const deskWindow = document.getElementById("desk-window");
let staff = null;

async function windowView() {
  if (!deskWindow) return;
  const r = await fetch(`/api/windows/${encodeURIComponent(deskWindow.value)}`, { cache: "no-store" });
  const data = await r.json().catch(() => ({}));
  if (!data.ok) return;
  const w = data.window;
  document.getElementById("desk-ticket").textContent = (w.current && w.current.number) || "—";
  document.getElementById("desk-ticket-state").textContent =
    w.state === "closed" ? t("未登录", "logged out") : w.state === "paused" ? t("暂停", "paused") : "";
  const ticket = document.getElementById("c-ticket");
  if (ticket && w.current && !ticket.value) ticket.value = w.current.number;
}

async function press(op) {
  const err = document.getElementById("desk-error");
  err.textContent = "";
  let body = {};
  if (op === "login") body = { staff };
  if (op === "transfer") {
    const [kind, value] = document.getElementById("desk-to").value.split(":");
    body = kind === "w" ? { to_window: value } : { to_service: value };
  }
  const r = await send("POST", `/api/windows/${encodeURIComponent(deskWindow.value)}/${op}`, body);
  if (!r.ok) err.textContent = message(r.data.error);
  const ticket = document.getElementById("c-ticket");
  if (ticket && op !== "recall") ticket.value = "";
  windowView();
}

if (deskWindow) {
  fetch("/api/auth/session", { cache: "no-store" }).then(r => r.json()).then(d => {
    staff = d.principal && d.principal.staff;
  });
  for (const b of document.querySelectorAll(".desk-window [data-op]")) {
    b.addEventListener("click", () => press(b.dataset.op));
  }
  deskWindow.addEventListener("change", windowView);
  windowView();
  setInterval(windowView, 5000);
}

// a matter chosen: its form came in (htmx); the ticket being served goes into it
document.body.addEventListener("htmx:afterSwap", e => {
  if (e.target.id === "case-form-box") {
    windowView();
    const first = document.getElementById("case-form").querySelector("input");
    if (first) first.focus();
  }
});

document.addEventListener("submit", async e => {
  const form = e.target.closest("#case-form");
  if (!form) return;
  e.preventDefault();
  e.stopImmediatePropagation();
  clearErrors(form);
  const ticks = [...form.querySelectorAll("input[name=material]")];
  const value = name => form.querySelector(`[name=${name}]`).value.trim();
  const body = {
    matter: form.dataset.matter, applicant: value("applicant"),
    materials: ticks.filter(i => i.checked).map(i => i.value),
    missing: ticks.filter(i => !i.checked).map(i => i.value),
    tolerated: form.querySelector("[name=tolerated]").checked, notes: value("notes"),
  };
  for (const name of ["id_number", "phone", "ticket", "accepted_on"]) if (value(name)) body[name] = value(name);
  const button = form.querySelector("[type=submit]");
  button.disabled = true;
  const r = await send("POST", "/api/cases", body);
  button.disabled = false;
  if (!r.ok) return showErrors(form, r.data.error);
  const number = r.data.case.number;
  document.getElementById("case-form-box").replaceChildren();
  document.getElementById("matter-q").value = "";
  document.getElementById("matter-results").replaceChildren();
  await htmx.ajax("GET", `/desk/case/${encodeURIComponent(number)}`, { target: "#case-result", swap: "innerHTML" });
  htmx.trigger(document.body, "refresh-cases");
  toast(t(`已受理：${number}`, `Accepted: ${number}`));
}, true);
