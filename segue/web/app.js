// The playground: wires the form, the result panel and the history together.
// Plain ES modules served as static files; no build step.

import { createTask, isFinal, listModels, setKey, wantsKey, watch } from "./api.js";
import { buildRequest, setModelDefaults, wireForm } from "./form.js";
import { refresh, wireHistory } from "./history.js";
import { showFrames, showMessage, showRequest, showTask, wireResult } from "./result.js";

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = "segue.apiKey";
const PREFERRED_MODEL = "seedance-1-0-lite-i2v-250428";
const IMAGE_MODES = new Set(["first_last_frame", "first_frame"]);
let models = [];
let watching = null; // AbortController of the task being followed

// Before anyone typed a key, a server that needs one gets a highlighted key field, not errors.
function markKeyWanted(wanted) {
  const input = $("api-key");
  input.classList.toggle("wanted", wanted);
  input.placeholder = wanted ? "enter your key to start" : "kept in this browser only";
}

function showError(message) {
  const box = $("error");
  box.hidden = !message;
  box.textContent = message || "";
}

async function loadModels() {
  const select = $("model");
  const previous = select.value;
  try {
    // a Volcengine spelling (byteplus_id) is the same model again: offered once
    models = (await listModels()).data.filter(
      (m) => !m.byteplus_id && m.modes.some((x) => IMAGE_MODES.has(x)));
    markKeyWanted(false);
  } catch (err) {
    models = [];
    if (wantsKey(err)) markKeyWanted(true);
    else showError(`Models could not be listed: ${err.message}`);
  }
  const options = models.length ? models : [{ id: previous || PREFERRED_MODEL, modes: [] }];
  select.replaceChildren(...options.map((m) => {
    const lastToo = m.modes.includes("first_last_frame") || !m.modes.length;
    if (m.served === false) {  // no running worker serves it: shown, with why, not chosen
      const off = new Option(`${m.id} (not available here)`, m.id);
      off.disabled = true;
      off.title = m.unavailable_reason || "No running worker serves this model.";
      return off;
    }
    return new Option(lastToo ? m.id : `${m.id} (first frame only)`, m.id);
  }));
  const usable = models.filter((m) => m.served !== false);
  const firstLast = usable.find((m) => m.modes.includes("first_last_frame"));
  const preferred = usable.find((m) => m.id === PREFERRED_MODEL &&
    m.modes.includes("first_last_frame"));
  const keep = usable.find((m) => m.id === previous);
  select.value = (keep || preferred || firstLast || options[0]).id;
  setModelDefaults(models.find((m) => m.id === select.value));
}

function follow(task) {
  if (watching) watching.abort();
  watching = new AbortController();
  showTask(task);
  if (isFinal(task)) return Promise.resolve(task);
  return watch(task.id, showTask, watching.signal)
    .then((last) => { refresh(); return last; })
    .catch((err) => { if (err.name !== "AbortError") showMessage(err.message); });
}

async function submit(event) {
  event.preventDefault();
  showError("");
  const { body, files, frames } = buildRequest();
  const button = $("submit");
  button.disabled = true;
  try {
    const { id } = await createTask(body);
    showFrames(frames);
    showRequest(body, files);
    refresh();
    await follow({ id, status: "queued", progress: 0 });
  } catch (err) {
    showError(err.message);
  } finally {
    button.disabled = false;
  }
}

function openTask(task) {
  showFrames(null);
  $("curl-snippet").textContent = "";
  $("python-snippet").textContent = "";
  follow(task);
  $("result").scrollIntoView({ behavior: "smooth", block: "start" });
}

function wireKey() {
  const input = $("api-key");
  input.value = localStorage.getItem(KEY_STORAGE) || "";
  setKey(input.value.trim());
  input.addEventListener("change", () => {
    const key = input.value.trim();
    localStorage.setItem(KEY_STORAGE, key);
    setKey(key);
    showError("");
    loadModels();
    refresh();
  });
}

function main() {
  wireKey();
  wireForm();
  wireResult();
  wireHistory(openTask);
  $("model").addEventListener("change", () =>
    setModelDefaults(models.find((m) => m.id === $("model").value)));
  $("request").addEventListener("submit", submit);
  loadModels();
  refresh();
}

main();
