// The key's recent tasks from the list API, with a status filter, open, cancel and delete;
// a page of 20 at first, and "Show more" for the next pages.

import { deleteTask, listTasks, wantsKey } from "./api.js";

const $ = (id) => document.getElementById(id);
const FINISHED = new Set(["succeeded", "failed", "expired"]);
const PAGE = 20;
let onOpen = () => {};
let pages = 1; // how many pages are shown: a refresh keeps what "Show more" opened

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

// The first `pages` pages, newest first; a task that moved from one page to the next
// while they were read is shown once.
async function load(status) {
  const items = [];
  const seen = new Set();
  let total = 0;
  for (let n = 1; n <= pages; n++) {
    const page = await listTasks(status, PAGE, n);
    total = page.total;
    for (const task of page.items) {
      if (!seen.has(task.id)) items.push(task);
      seen.add(task.id);
    }
    if (n * PAGE >= total) break;
  }
  return { items, total };
}

export async function refresh() {
  const body = $("history-table").tBodies[0];
  try {
    const { items, total } = await load($("status-filter").value);
    body.replaceChildren(...items.map(row));
    $("history-total").textContent = `${items.length} of ${total} shown`;
    const more = $("history-more");
    more.hidden = items.length >= total;
    more.textContent = `Show ${Math.min(PAGE, total - items.length)} more`;
    showError("");
  } catch (err) {
    body.replaceChildren();
    $("history-more").hidden = true;
    const hint = wantsKey(err);
    $("history-total").textContent = hint ? "Enter your API key above to see your tasks." : "";
    showError(hint ? "" : err.message);
  }
}

export function wireHistory(open) {
  onOpen = open;
  $("status-filter").addEventListener("change", () => { pages = 1; refresh(); });
  $("refresh").addEventListener("click", refresh);
  $("history-more").addEventListener("click", () => { pages += 1; refresh(); });
}
