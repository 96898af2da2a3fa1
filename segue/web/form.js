// The request form: two frames (drop, paste, choose or URL), keyframes between them (each
// with its time), the prompt and the settings.
// A setting the person never touched is not sent, so a text command in the prompt still
// applies; a setting they changed is sent and wins over the prompt (decisions.md).

const $ = (id) => document.getElementById(id);
const ROLES = ["first_frame", "last_frame"];
const PREFIX = { first_frame: "first", last_frame: "last" };
const SETTINGS = ["resolution", "ratio", "duration", "seed", "camera_fixed", "watermark",
  "return_last_frame"];
const NUMBERS = new Set(["duration", "seed"]);
const defaults = { resolution: "720p", ratio: "adaptive", duration: "5", seed: "-1",
  camera_fixed: false, watermark: false, return_last_frame: false };

// Text command spellings (segue/commands.py) and the setting each one sets.
const COMMANDS = { rs: "resolution", resolution: "resolution", rt: "ratio", ratio: "ratio",
  dur: "duration", duration: "duration", seed: "seed", cf: "camera_fixed",
  camerafixed: "camera_fixed", wm: "watermark", watermark: "watermark" };
const COMMAND = /(?<!\S)--([A-Za-z]+)(?:[ \t]+|=)(\S+)/g;

const images = { first_frame: null, last_frame: null }; // {url, name} per role
const keyframes = []; // {row, image: {url, name} | null} between the ends, in page order
const changed = new Set();

function control(name) {
  return $(name);
}

function readSetting(name) {
  const el = control(name);
  if (el.type === "checkbox") return el.checked;
  return NUMBERS.has(name) ? Number(el.value) : el.value;
}

function writeSetting(name, value) {
  const el = control(name);
  if (el.type === "checkbox") el.checked = Boolean(value);
  else el.value = value;
}

function field(name) {
  return document.querySelector(`[data-setting="${name}"]`);
}

function markChanged(name, isChanged) {
  if (isChanged) changed.add(name);
  else changed.delete(name);
  field(name).classList.toggle("changed", isChanged);
  if (isChanged) field(name).classList.remove("from-prompt");
}

// The settings the prompt's text commands set, as written (the last one of a kind wins).
function promptSettings() {
  const found = {};
  for (const [, flag, value] of $("prompt").value.matchAll(COMMAND)) {
    const name = COMMANDS[flag.toLowerCase()];
    if (name) found[name] = value;
  }
  return found;
}

// Whether a control can show a command's value; one it cannot is the server's to refuse.
function shows(name, value) {
  const el = control(name);
  if (el.type === "checkbox") return value === "true" || value === "false";
  if (el.tagName === "SELECT") return [...el.options].some((o) => o.value === value);
  return /^-?\d+$/.test(value);
}

// A setting nobody touched shows what will apply: the prompt's command, else the default.
function showUntouched() {
  const fromPrompt = promptSettings();
  for (const name of SETTINGS) {
    if (changed.has(name)) continue;
    const value = fromPrompt[name];
    const usable = value !== undefined && shows(name, value);
    const checkbox = control(name).type === "checkbox";
    writeSetting(name, usable ? (checkbox ? value === "true" : value) : defaults[name]);
    field(name).classList.toggle("from-prompt", usable);
    field(name).title = usable ? "set by a text command in the prompt" : "";
  }
}

export function resetSettings() {
  for (const name of SETTINGS) markChanged(name, false);
  showUntouched();
}

// The model's own default resolution, applied unless the person chose one.
export function setModelDefaults(model) {
  defaults.resolution = (model && model.default_resolution) || "720p";
  showUntouched();
}

function setImage(role, image) {
  images[role] = image;
  const zone = $(`${PREFIX[role]}-drop`);
  const img = zone.querySelector("img");
  img.hidden = !image;
  zone.classList.toggle("filled", Boolean(image));
  if (image) img.src = image.url;
  else img.removeAttribute("src");
}

function readFile(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve({ url: reader.result, name: file.name || "image.png" });
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function takeFile(role, file) {
  if (!file) return;
  $(`${PREFIX[role]}-url`).value = "";
  setImage(role, await readFile(file));
}

function wireDropZone(role) {
  const prefix = PREFIX[role];
  const zone = $(`${prefix}-drop`);
  const stop = (event) => { event.preventDefault(); event.stopPropagation(); };
  zone.addEventListener("dragover", (event) => { stop(event); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    stop(event);
    zone.classList.remove("over");
    const file = event.dataTransfer && event.dataTransfer.files[0];
    if (file) takeFile(role, file);
  });
  zone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") { stop(event); $(`${prefix}-file`).click(); }
  });
  $(`${prefix}-file`).addEventListener("change", (event) => takeFile(role, event.target.files[0]));
  $(`${prefix}-url`).addEventListener("input", (event) => {
    const url = event.target.value.trim();
    setImage(role, url ? { url, name: null } : null);
  });
}

function onPaste(event) {
  const items = [...((event.clipboardData && event.clipboardData.items) || [])];
  const item = items.find((i) => i.kind === "file" && i.type.startsWith("image/"));
  if (!item) return;
  event.preventDefault();
  const focused = document.activeElement && document.activeElement.closest(".drop");
  const role = focused ? focused.dataset.role : (ROLES.find((r) => !images[r]) || "first_frame");
  takeFile(role, item.getAsFile());
}

// One row of the storyboard: a picture (file or URL) and its time in seconds.
function addKeyframe() {
  const n = keyframes.length + 1;
  const row = document.createElement("li");
  row.className = "keyframe";
  row.innerHTML = `<img alt="Keyframe ${n} preview" hidden>
    <span><input type="file" accept="image/*" aria-label="Keyframe ${n} image file">
      <input type="url" placeholder="or https://…/middle.png" aria-label="Keyframe ${n} image URL"></span>
    <input type="number" min="0" step="0.05" aria-label="Keyframe ${n} time (s)" title="seconds">
    <button type="button" aria-label="Remove keyframe ${n}">Remove</button>`;
  const entry = { row, image: null };
  const [file, url, time] = row.querySelectorAll("input");
  const show = (image) => {
    entry.image = image;
    const img = row.querySelector("img");
    img.hidden = !image;
    if (image) img.src = image.url;
  };
  time.value = String(readSetting("duration") / 2 || 1);
  file.addEventListener("change", async () => {
    if (!file.files[0]) return;
    url.value = "";
    show(await readFile(file.files[0]));
  });
  url.addEventListener("input", () => show(url.value.trim() ? { url: url.value.trim() } : null));
  row.querySelector("button").addEventListener("click", () => {
    keyframes.splice(keyframes.indexOf(entry), 1);
    row.remove();
  });
  keyframes.push(entry);
  $("keyframe-list").append(row);
}

function keyframeItems(files) {
  const items = [];
  for (const { row, image } of keyframes) {
    if (!image) continue;
    const time = Number(row.querySelector("input[type=number]").value);
    items.push({ type: "image_url", image_url: { url: image.url }, role: "keyframe", time });
    if (image.name) files[`keyframe${items.length}`] = image.name;
  }
  return items;
}

export function wireForm() {
  ROLES.forEach(wireDropZone);
  $("add-keyframe").addEventListener("click", addKeyframe);
  document.addEventListener("paste", onPaste);
  for (const name of SETTINGS) {
    const el = control(name);
    el.addEventListener(el.type === "checkbox" || el.tagName === "SELECT" ? "change" : "input",
      () => markChanged(name, !(NUMBERS.has(name) && el.value === "")));
  }
  $("prompt").addEventListener("input", showUntouched);
  $("reset-settings").addEventListener("click", resetSettings);
  resetSettings();
}

// The create body (Ark wire format) and the local file names behind its data URLs.
export function buildRequest() {
  const content = [];
  const prompt = $("prompt").value.trim();
  if (prompt) content.push({ type: "text", text: prompt });
  const files = {};
  for (const role of ROLES) {
    if (!images[role]) continue;
    content.push({ type: "image_url", image_url: { url: images[role].url }, role });
    if (images[role].name) files[role] = images[role].name;
  }
  content.push(...keyframeItems(files));
  const body = { model: $("model").value, content };
  for (const name of SETTINGS) if (changed.has(name)) body[name] = readSetting(name);
  return { body, files, frames: { ...images } };
}
