// The result panel: status and progress, the video beside its two input frames, a frame
// scrubber, downloads, the task JSON and the equivalent curl and Python snippets.

import { curlSnippet, pythonSnippet } from "./snippets.js";

const $ = (id) => document.getElementById(id);
const LABELS = {
  queued: "Queued", running: "Rendering", succeeded: "Succeeded", failed: "Failed",
  expired: "Expired", cancelled: "Cancelled",
};
let fps = 24;
let frameCount = 0;

function setImage(id, url) {
  const img = $(id);
  img.closest("figure").hidden = !url;
  if (url) img.src = url;
  else img.removeAttribute("src");
}

// The frames that were sent (known only for tasks submitted from this page).
export function showFrames(frames) {
  setImage("out-first", frames && frames.first_frame && frames.first_frame.url);
  setImage("out-last", frames && frames.last_frame && frames.last_frame.url);
}

export function showRequest(body, files) {
  const origin = window.location.origin + window.location.pathname.replace(/\/[^/]*$/, "");
  $("curl-snippet").textContent = curlSnippet(body, files, origin);
  $("python-snippet").textContent = pythonSnippet(body, files, origin);
}

function statusLine(task) {
  const label = LABELS[task.status] || task.status;
  if (task.status === "queued" || task.status === "running") {
    const eta = task.eta != null ? `, about ${Math.ceil(task.eta)} s left` : "";
    return `${label}: ${Math.round(task.progress || 0)}%${eta}`;
  }
  if (task.error) return `${label}: ${task.error.message}`;
  return label;
}

function setDownload(id, url) {
  const link = $(id);
  link.hidden = !url;
  if (url) link.href = url;
  else link.removeAttribute("href");
}

function showVideo(task) {
  const video = $("video");
  const url = task.content && task.content.video_url;
  // The video keeps its place between the frames while it is not there yet: the last frame
  // beside an empty place is never taken for the result.
  video.closest("figure").hidden = !task.id;
  video.controls = Boolean(url);
  const waiting = task.status === "queued" || task.status === "running";
  $("video-caption").textContent = url ? "Video" : waiting ? "Video: not rendered yet" : "No video";
  if (!url) {
    video.removeAttribute("src");
    $("scrubber").disabled = true;
    return;
  }
  if (video.getAttribute("src") !== url) {
    video.src = url;
    fps = task.framespersecond || 24;
    frameCount = task.frames || (task.duration || 0) * fps + 1;
    const scrubber = $("scrubber");
    scrubber.max = String(Math.max(frameCount - 1, 0));
    scrubber.value = "0";
    scrubber.disabled = false;
    $("frame-no").textContent = `1 / ${frameCount}`;
    video.play().catch(() => { /* autoplay refused: the controls are there */ });
  }
}

export function showTask(task) {
  const running = task.status === "queued" || task.status === "running";
  $("status-text").textContent = statusLine(task);
  $("status-text").className = `state-${task.status}`;
  $("task-id").textContent = task.id;
  const bar = $("progress");
  bar.hidden = !running && task.status !== "succeeded";
  bar.value = task.status === "succeeded" ? 100 : task.progress || 0;
  $("task-json").textContent = JSON.stringify(task, null, 2);
  showVideo(task);
  setDownload("download-video", task.content && task.content.video_url);
  setDownload("download-last", task.content && task.content.last_frame_url);
}

export function showMessage(text) {
  $("status-text").textContent = text;
  $("status-text").className = "";
}

export function wireResult() {
  const video = $("video");
  const scrubber = $("scrubber");
  scrubber.addEventListener("input", () => {
    video.pause();
    const frame = Number(scrubber.value);
    video.currentTime = Math.min((frame + 0.5) / fps, video.duration || Infinity);
    $("frame-no").textContent = `${frame + 1} / ${frameCount}`;
  });
  video.addEventListener("timeupdate", () => {
    if (document.activeElement === scrubber) return;
    const frame = Math.min(Math.floor(video.currentTime * fps), Math.max(frameCount - 1, 0));
    scrubber.value = String(frame);
    $("frame-no").textContent = `${frame + 1} / ${frameCount}`;
  });
  for (const button of document.querySelectorAll("button.copy")) {
    button.addEventListener("click", async () => {
      const text = $(button.dataset.copy).textContent;
      try {
        await navigator.clipboard.writeText(text);
        button.textContent = "Copied";
      } catch {
        button.textContent = "Select and copy";
      }
      setTimeout(() => { button.textContent = "Copy"; }, 1500);
    });
  }
  showFrames(null);
  showVideo({});
}
