// The admin application's forms and buttons: each sends JSON to the API route it names
// (data-api, data-method) with the session's CSRF token; the API validates it with the hall
// file's own models and its answer names each wrong field, shown beside that field. On
// success the page is read again (what changed shows at once) and says so.
"use strict";
const CSRF = document.querySelector("meta[name=csrf]").content;
const EN = document.documentElement.lang === "en";
const t = (zh, en) => (EN ? en : zh);

async function send(method, path, body) {
  const init = { method, headers: { "X-CSRF-Token": CSRF }, credentials: "same-origin" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let r;
  try {
    r = await fetch(path, init);
  } catch (e) {
    return { ok: false, status: 0, data: { error: { message: "网络不通，请稍后重试", message_en: "network problem, retry" } } };
  }
  const type = r.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await r.json().catch(() => ({})) : { html: await r.text() };
  if (r.status === 401) location.assign("/login?next=" + encodeURIComponent(location.pathname + location.search));
  return { ok: r.ok, status: r.status, data };
}

const message = e => (e ? (EN && e.message_en ? e.message_en : e.message) || e.code : t("操作失败", "failed"));

// A field's value as JSON, by the kind the page declared for it.
function value(form, name, kind) {
  const inputs = [...form.querySelectorAll(`[name="${name}"]`)];
  const raw = inputs[0].value.trim();
  const list = text => text.split(/[,，、\s]+/).filter(Boolean);
  switch (kind) {
    case "bool": return inputs[0].checked;
    case "refs": return inputs.filter(i => i.checked).map(i => i.value);
    case "int": return raw === "" ? undefined : (/^-?\d+$/.test(raw) ? Number(raw) : raw);
    case "float": return raw === "" ? undefined : (Number.isFinite(Number(raw)) ? Number(raw) : raw);
    case "select": return raw === "" ? (inputs[0].dataset.blank === "text" ? "" : null) : raw;
    case "lines": return inputs[0].value.split("\n").map(x => x.trim()).filter(Boolean);
    case "spans": return list(raw);
    case "ints": return list(raw).map(x => (/^-?\d+$/.test(x) ? Number(x) : x));
    case "quotas": return list(raw).map(q => {
      const [span, cap] = q.split("=");
      return { span, cap: /^\d+$/.test(cap || "") ? Number(cap) : cap };
    });
    default: return raw;
  }
}

function formBody(form) {
  const body = {}, seen = new Set();
  for (const input of form.querySelectorAll("[name][data-kind]")) {
    if (seen.has(input.name) || input.readOnly || input.disabled) continue;
    seen.add(input.name);
    const v = value(form, input.name, input.dataset.kind);
    if (v !== undefined) body[input.name] = v;
  }
  return body;
}

function clearErrors(scope) {
  for (const p of scope.querySelectorAll(".field-error, .form-error")) p.textContent = "";
  for (const i of scope.querySelectorAll("[aria-invalid]")) i.removeAttribute("aria-invalid");
}

// The API's problems by field: "services[7].name" or "hall.max_recalls" is the form's "name".
function showErrors(scope, error) {
  const general = [];
  for (const p of (error && error.problems) || []) {
    const field = p.key.replace(/^(services|windows|clerks|devices|notices)\[\d+\]\.?/, "")
      .replace(/^hall\./, "").split(/[.[]/)[0];
    const slot = field && scope.querySelector(`[data-error-for="${field}"]`);
    if (slot) {
      // a pattern the field's own note explains in words: say so, not the pattern
      const hinted = slot.parentElement.querySelector(".hint") && /\^.*\$/.test(message(p));
      slot.textContent = hinted ? t("格式不对，请按下方说明填写", "Wrong format: see the note below") : message(p);
      const input = scope.querySelector(`[name="${field}"]`);
      if (input) input.setAttribute("aria-invalid", "true");
    } else {
      general.push(`${p.key}：${message(p)}`);
    }
  }
  const top = scope.querySelector(".form-error") || scope.parentElement.querySelector(".form-error");
  const placed = ((error && error.problems) || []).length && !general.length;
  if (top) {
    top.textContent = placed ? t("请修改标红的项目，未作任何更改", "Please fix the fields marked in red; nothing was changed")
      : [message(error), ...general].join("；");
  }
  const first = scope.querySelector("[aria-invalid]");
  if (first) first.focus();
}

// After a change: the part of the page that shows it is read again where it says how
// (data-refresh, e.g. a case's card), else the page; either way the page says it was done.
function done(text, scope) {
  const box = scope && scope.closest("[data-refresh]");
  if (box) {
    htmx.ajax("GET", box.dataset.refresh, { target: box, swap: "outerHTML" });
    htmx.trigger(document.body, "refresh-cases");
    return toast(text || t("已完成", "Done"));
  }
  sessionStorage.setItem("yimen-toast", text || t("已保存", "Saved"));
  location.reload();
}

function toast(text) {
  const p = document.getElementById("toast");
  p.textContent = text;
  p.hidden = false;
  setTimeout(() => { p.hidden = true; }, 4000);
}

document.addEventListener("submit", async e => {
  const form = e.target.closest("form[data-api]");
  if (!form) return;
  e.preventDefault();
  clearErrors(form);
  const button = form.querySelector("[type=submit]");
  button.disabled = true;
  const r = await send(form.dataset.method, form.dataset.api, formBody(form));
  button.disabled = false;
  if (!r.ok) return showErrors(form, r.data.error);
  if (form.dataset.after === "token") {
    document.getElementById("new-token-text").textContent = r.data.token;
    document.getElementById("new-token").hidden = false;
    form.reset();
    // the list above gains the new token (its text is never in it)
    htmx.ajax("GET", location.pathname, { target: "#token-list", select: "#token-list", swap: "outerHTML" });
    return;
  }
  done(undefined, form);
});

document.addEventListener("click", async e => {
  const button = e.target.closest("button[data-api], button[data-sheet], button[data-enrol]");
  if (!button) return;
  if (button.dataset.confirm && !confirm(button.dataset.confirm)) return;
  const scope = button.closest("details, section, main");
  clearErrors(scope);
  button.disabled = true;
  let r;
  if (button.dataset.sheet) {
    r = await send("POST", button.dataset.sheet);
    button.disabled = false;
    if (!r.ok) return showErrors(scope, r.data.error);
    document.getElementById("sheet-body").innerHTML = r.data.html;   // our own server's sheet
    document.getElementById("sheet-dialog").showModal();
    return;
  }
  if (button.dataset.enrol) {
    r = await send("POST", "/api/auth/enrol", { device: button.dataset.enrol });
    if (r.ok) return location.assign(r.data.page);
  } else {
    r = await send(button.dataset.method, button.dataset.api,
                   button.dataset.body ? JSON.parse(button.dataset.body) : undefined);
  }
  button.disabled = false;
  if (!r.ok) return showErrors(scope, r.data.error);
  done(t("已完成", "Done"), button);
});

// The matter catalogue's import: the file read here as base64 and sent as JSON; every problem
// (by row and column) listed, or the counts (a check only changes nothing).
const importForm = document.getElementById("matters-import");
if (importForm) {
  importForm.addEventListener("submit", async e => {
    e.preventDefault();
    const dryRun = Boolean(e.submitter && e.submitter.dataset.dryRun);
    const input = importForm.querySelector("input[type=file]");
    const result = document.getElementById("import-result"), list = document.getElementById("import-problems");
    clearErrors(importForm);
    result.textContent = "";
    list.replaceChildren();
    const file = input.files[0];
    if (!file) {
      importForm.querySelector(".form-error").textContent = t("请选择文件", "choose a file");
      return input.focus();
    }
    const content = await new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(String(reader.result).split(",", 2)[1] || "");
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(file);
    }).catch(() => null);
    if (content === null) {
      importForm.querySelector(".form-error").textContent = t("无法读取文件", "the file cannot be read");
      return;
    }
    for (const b of importForm.querySelectorAll("button")) b.disabled = true;
    const r = await send("POST", "/api/matters/import", {
      filename: file.name, content, dry_run: dryRun, replace: importForm.querySelector("[name=replace]").checked });
    for (const b of importForm.querySelectorAll("button")) b.disabled = false;
    if (!r.ok) {
      importForm.querySelector(".form-error").textContent = message(r.data.error);
      for (const p of (r.data.error && r.data.error.problems) || []) {
        const li = document.createElement("li");
        li.textContent = message(p);
        list.append(li);
      }
      return;
    }
    const d = r.data;
    const counts = t(`新增 ${d.added} 项，修改 ${d.changed} 项，删除 ${d.removed} 项；共 ${d.matters} 项`,
                     `${d.added} added, ${d.changed} changed, ${d.removed} removed; ${d.matters} in all`);
    if (dryRun) {
      result.textContent = t("检查通过，可以导入：", "No problems; importing would make: ") + counts;
      return;
    }
    done(t("已导入：", "Imported: ") + counts);
  });
}

const dialog = document.getElementById("sheet-dialog");
if (dialog) {
  document.getElementById("sheet-print").addEventListener("click", () => window.print());
  document.getElementById("sheet-close").addEventListener("click", () => {
    dialog.close();
    document.getElementById("sheet-body").replaceChildren();   // the password is not kept
  });
}

document.getElementById("lang").addEventListener("click", e => {
  document.cookie = `yimen_lang=${e.target.dataset.lang}; path=/; SameSite=Strict; max-age=31536000`;
  location.reload();
});
document.getElementById("sign-out").addEventListener("click", async () => {
  await send("POST", "/api/auth/logout");
  location.assign("/login");
});

// Charts (ECharts, where the page loads it): each .chart's data in its data-chart attribute,
// drawn again whenever htmx puts a new panel in.
function drawCharts(root) {
  if (typeof echarts === "undefined") return;
  for (const box of root.querySelectorAll(".chart[data-chart]")) {
    const data = JSON.parse(box.dataset.chart);
    const chart = echarts.getInstanceByDom(box) || echarts.init(box, null, { renderer: "svg" });
    chart.setOption({
      animation: false, grid: { left: 36, right: 8, top: 12, bottom: 24 },
      xAxis: { type: "category", data: data.hours, axisLabel: { color: "#1b1f24" } },
      yAxis: { type: "value", minInterval: 1, axisLabel: { color: "#1b1f24" } },
      series: [{ type: "bar", data: data.tickets, barMaxWidth: 36, itemStyle: { color: "#0b57a4" },
                 name: t("取号", "tickets") }],
      tooltip: { trigger: "axis" },
    });
  }
}
drawCharts(document);
document.body.addEventListener("htmx:afterSwap", e => drawCharts(e.target));

// The dashboard's live part: read again after the hall's pushes (Server-Sent Events), at most
// once a second and always after the last one; EventSource reconnects by itself.
const live = document.getElementById("live");
if (live) {
  let timer = null, last = 0;
  const refresh = () => { timer = null; last = Date.now(); htmx.trigger(live, "refresh"); };
  new EventSource(live.dataset.stream).addEventListener("board", () => {
    if (!timer) timer = setTimeout(refresh, Math.max(0, last + 1000 - Date.now()));
  });
}

const saved = sessionStorage.getItem("yimen-toast");
if (saved) {
  sessionStorage.removeItem("yimen-toast");
  toast(saved);
}
