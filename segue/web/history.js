// The key's recent tasks from the list API, with a status filter, open, cancel and delete.

import { deleteTask, listTasks, wantsKey } from "./api.js";

const $ = (id) => document.getElementById(id);
const FINISHED = new Set(["succeeded", "failed", "expired"]);
let onOpen = () => {};

function showError(message) {
  const box = $("history-error");
  box.hidden = !message;
  box.textContent = message || "";
}

function button(label, title, action) {
  const el = document.createElement("button");
  el.type = "button";
  el.textContent = label;
  el.title = title;
  el.setAttribute("aria-label", title);
  el.addEventListener("click", action);
  return el;
}

function remove(task) {
  return async () => {
    try {
      await deleteTask(task.id);
      showError("");
    } catch (err) {
      showError(err.message);
    }
    refresh();
  };
}

function row(task) {
  const tr = document.createElement("tr");
  tr.dataset.taskId = task.id;
  const created = new Date(task.created_at * 1000).toLocaleString();
  for (const [text, cls] of [[task.id, "mono"], [task.status, `state-${task.status}`],
    [task.model, ""], [created, ""]]) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    tr.append(td);
  }
  const actions = document.createElement("td");
  actions.className = "row-actions";
  actions.append(button("Open", `Open ${task.id}`, () => onOpen(task)));
  if (task.status === "queued") actions.append(button("Cancel", `Cancel ${task.id}`, remove(task)));
  if (FINISHED.has(task.status)) {
    actions.append(button("Delete", `Delete ${task.id}`, remove(task)));
  }
  tr.append(actions);
  return tr;
}

export async function refresh() {
  const body = $("history-table").tBodies[0];
  try {
    const page = await listTasks($("status-filter").value, 20);
    body.replaceChildren(...page.items.map(row));
    $("history-total").textContent = `${page.items.length} of ${page.total} shown`;
    showError("");
  } catch (err) {
    body.replaceChildren();
    const hint = wantsKey(err);
    $("history-total").textContent = hint ? "Enter your API key above to see your tasks." : "";
    showError(hint ? "" : err.message);
  }
}

export function wireHistory(open) {
  onOpen = open;
  $("status-filter").addEventListener("change", refresh);
  $("refresh").addEventListener("click", refresh);
}
