// A case's status for the citizen (/c/{token} from the notice's QR code, or /case with the
// case number and query code, as the self-service terminal asks): its state and dates, and
// nothing personal beyond the masked name. Read again every minute while open.
const STEPS = [["accepted", "受理"], ["handed_off", "分送"], ["in_review", "审查"], ["decided", "办结"],
               ["ready", "待取件"], ["handed_over", "已取件"]];
const ENDED = { rejected: "不予受理", returned: "已退办", escalated: "已上报上级办理" };
const token = location.pathname.startsWith("/c/") ? decodeURIComponent(location.pathname.slice(3)) : null;
let asked = null;

function show(c) {
  $("query").hidden = !!token;
  $("unknown").hidden = true;
  $("case").hidden = false;
  $("matter").textContent = c.matter_name;
  $("state").replaceChildren(c.state_name, el("span", "en", c.state_en));
  $("case-number").textContent = c.number;
  $("applicant").textContent = c.applicant;
  $("accepted").textContent = c.accepted_on;
  $("due").textContent = c.paused ? `${c.due}（补正期间暂停计时）` : c.due;
  $("decided").textContent = c.decided_on || "—";
  $("paused").hidden = !c.paused;
  if (c.paused) {
    $("paused").textContent = `请补充材料：${c.missing.join("、") || "见一次性告知书"} · Materials needed`;
  }
  const reached = STEPS.findIndex(([s]) => s === c.state);
  const steps = ENDED[c.state] ? [[c.state, ENDED[c.state]]] : STEPS;
  $("steps").replaceChildren(...steps.map(([s, zh], i) => {
    const li = el("li", i < reached ? "done" : i === reached || ENDED[c.state] ? "now" : "", zh);
    if (i === reached || ENDED[c.state]) li.setAttribute("aria-current", "step");
    return li;
  }));
}

function notFound() {
  $("case").hidden = true;
  $("unknown").hidden = false;
}

async function load() {
  try {
    const r = token
      ? await fetch(`/api/case-status/${encodeURIComponent(token)}`, { cache: "no-store" })
      : await fetch("/api/case-status", { method: "POST", headers: { "Content-Type": "application/json" },
                                          body: JSON.stringify(asked) });
    const data = await r.json();
    if (data.ok) return show(data.case);
    if (token) return notFound();
    $("case").hidden = true;
    $("error").textContent = `${data.error.message} · ${data.error.message_en}`;
  } catch (e) {
    $("error").textContent = "网络不通，请稍后重试 · Network problem, please retry";
  }
}

$("query").addEventListener("submit", e => {
  e.preventDefault();
  $("error").textContent = "";
  asked = { number: $("number").value.trim(), code: $("code").value.trim() };
  if (!asked.number || !/^[0-9]{6}$/.test(asked.code)) {
    $("error").textContent = "请输入办件编号和 6 位查询码 · Enter the case number and the 6-digit code";
    return;
  }
  load();
});

if (token) load(); else $("query").hidden = false;
setInterval(() => { if ((token || asked) && !document.hidden) load(); }, 60000);
