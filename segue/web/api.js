// Talking to the Ark task API of this server. Every failure becomes an ApiError whose
// message is the server's own (both error envelopes are understood), never a generic one.

export const TASKS = "api/v3/contents/generations/tasks";
const FINAL = new Set(["succeeded", "failed", "expired", "cancelled"]);
const POLL_MS = 700;

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function isFinal(task) {
  return FINAL.has(task.status);
}

let apiKey = "";
export function setKey(key) {
  apiKey = key;
}

// A refusal that only says no key was given yet: worth a hint, not an error.
export function wantsKey(err) {
  return err.status === 401 && !apiKey;
}

function headers(extra = {}) {
  return apiKey ? { Authorization: `Bearer ${apiKey}`, ...extra } : extra;
}

async function toError(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    /* not JSON: fall through to the status line */
  }
  const error = body && body.error;
  if (error && typeof error === "object") {
    return new ApiError(response.status, error.code || "", error.message || "");
  }
  if (typeof error === "string") return new ApiError(response.status, body.code || "", error);
  return new ApiError(response.status, `HTTP${response.status}`,
    `The server answered ${response.status} ${response.statusText}.`);
}

export async function call(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      headers: headers(body ? { "Content-Type": "application/json" } : {}),
      body: body ? JSON.stringify(body) : undefined,
    });
  } catch (err) {
    throw new ApiError(0, "NetworkError", `The server could not be reached (${err.message}).`);
  }
  if (!response.ok) throw await toError(response);
  return response.json();
}

export const createTask = (body) => call("POST", TASKS, body);
export const getTask = (id) => call("GET", `${TASKS}/${encodeURIComponent(id)}`);
export const deleteTask = (id) => call("DELETE", `${TASKS}/${encodeURIComponent(id)}`);
export const listModels = () => call("GET", "api/v3/models");

export function listTasks(status, pageSize = 20, pageNum = 1) {
  const query = new URLSearchParams({ page_num: String(pageNum), page_size: String(pageSize) });
  if (status) query.set("filter.status", status);
  return call("GET", `${TASKS}?${query}`);
}

// Server-Sent Events through fetch (EventSource cannot send the key). Resolves with the last
// task seen, or null when the stream is not available here, so the caller falls back.
async function stream(id, onTask, signal) {
  let response;
  try {
    response = await fetch(`${TASKS}/${encodeURIComponent(id)}/events`,
      { headers: headers({ Accept: "text/event-stream" }), signal });
  } catch {
    return null;
  }
  const type = response.headers.get("content-type") || "";
  if (response.status !== 200 || !type.startsWith("text/event-stream")) return null;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let last = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return last;
    buffer += value.replace(/\r\n/g, "\n");
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const data = buffer.slice(0, cut).split("\n")
        .filter((line) => line.startsWith("data:")).map((line) => line.slice(5).trim());
      buffer = buffer.slice(cut + 2);
      if (!data.length) continue; // a keep-alive comment
      last = JSON.parse(data.join("\n"));
      onTask(last);
      if (isFinal(last)) return last;
    }
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Follow a task to its end: the event stream when the server has one, polling otherwise.
export async function watch(id, onTask, signal) {
  const last = await stream(id, onTask, signal).catch(() => null);
  if (last && isFinal(last)) return last;
  for (;;) {
    if (signal && signal.aborted) throw new DOMException("stopped", "AbortError");
    const task = await getTask(id);
    onTask(task);
    if (isFinal(task)) return task;
    await sleep(POLL_MS);
  }
}
