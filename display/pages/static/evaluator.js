// 评价器 (/evaluator): a tablet at the window shows the prompt the clerk asked for; five levels,
// none pre-selected; a 差评 then asks for its reasons. Read again on each push of the hall and
// every few seconds; a prompt nobody answers times out on the server as 未评价.
let current = null, chosen = null;

function show(id) {
  for (const s of ["idle", "ask", "why", "thanks"]) $(s).hidden = s !== id;
}

async function refresh() {
  let r;
  try {
    r = await fetch("/api/evaluator", { cache: "no-store" });
  } catch (e) {
    return;
  }
  if (REFUSED(r.status)) return showNotEnrolled("/api/evaluator");
  const data = await r.json().catch(() => ({}));
  if (!data.ok) return;
  $("window").textContent = `${data.window_name} · 服务评价`;
  if (!$("reasons").children.length) {
    $("reasons").replaceChildren(...data.reasons.map(x => {
      const label = el("label", "reason");
      const box = el("input");
      box.type = "checkbox";
      box.value = x.code;
      label.append(box, el("span", "", x.name));
      return label;
    }));
  }
  const p = data.prompt;
  if (p.op === "prompt") {
    if (!current || current.session !== p.session) {
      current = p;
      chosen = null;
      $("ask-ticket").textContent = p.case ? `${p.ticket} · 办件 ${p.case}` : p.ticket;
      show("ask");
    }
  } else if (current && $("thanks").hidden) {
    current = null;
    show("idle");
  }
}

async function send(level, reasons) {
  $("error").textContent = "";
  const r = await fetch("/api/evaluator/rate", { method: "POST", referrerPolicy: ORIGIN_SENT,
    headers: { "Content-Type": "application/json", "X-CSRF-Token": session.csrf || "" },
    body: JSON.stringify({ session: current.session, level, reasons }) });
  const data = await r.json().catch(() => ({}));
  if (!data.ok) {
    $("error").textContent = (data.error && data.error.message) || "评价未能提交";
    current = null;
    return show("idle");
  }
  show("thanks");
  setTimeout(() => { current = null; show("idle"); }, 5000);
}

for (const b of document.querySelectorAll("[data-level]")) {
  b.addEventListener("click", () => {
    if (!current) return;
    chosen = b.dataset.level;
    if (b.classList.contains("bad")) return show("why");
    send(chosen, []);
  });
}
$("send").addEventListener("click", () => {
  const reasons = [...document.querySelectorAll("#reasons input:checked")].map(i => i.value);
  send(chosen, reasons);
});

loadSession().then(status => {
  if (REFUSED(status)) return showNotEnrolled("/api/evaluator");
  refresh();
  followSession("/api/stream", { board: refresh }, { refused: () => showNotEnrolled("/api/evaluator") });
  setInterval(refresh, 3000);
});
