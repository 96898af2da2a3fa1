// The same request as curl and as Python with the official BytePlus SDK. Images that were
// dropped travel as data URLs; the snippets rebuild them from the local file instead of
// printing megabytes of base64. The key is read from $SEGUE_KEY, never written out.

const VARS = { first_frame: "FIRST", last_frame: "LAST" };

function varName(role) {
  return VARS[role] || role.toUpperCase(); // keyframe1 -> KEYFRAME1
}

function fileName(files, role) {
  return (files[role] || `${role.replace("_frame", "")}.png`).replace(/[^\w.\-]/g, "_");
}

function mimeOf(url) {
  const match = /^data:([^;,]+)/.exec(url);
  return match ? match[1] : "image/png";
}

// Each data URL in the body, replaced by a marker that each language fills in its own way.
function withMarkers(body) {
  const copy = JSON.parse(JSON.stringify(body));
  const dataImages = [];
  let keyframes = 0;
  for (const item of copy.content) {
    if (item.type !== "image_url") continue;
    // keyframes share a role: each is told apart by its place (keyframe1, keyframe2, ...)
    const name = item.role === "keyframe" ? `keyframe${++keyframes}` : item.role;
    if (item.image_url.url.startsWith("data:")) {
      dataImages.push({ role: name, mime: mimeOf(item.image_url.url) });
      item.image_url.url = `@@${name}@@`;
    }
  }
  return { copy, dataImages };
}

function shellQuote(text) {
  return `'${text.replace(/'/g, "'\\''")}'`;
}

export function curlSnippet(body, files, origin) {
  const { copy, dataImages } = withMarkers(body);
  const lines = dataImages.length
    ? ["# local images travel as data URLs (macOS: use base64 -i FILE)"] : [];
  for (const { role, mime } of dataImages) {
    lines.push(`${varName(role)}="data:${mime};base64,$(base64 -w0 ${shellQuote(fileName(files, role))})"`);
  }
  // an unquoted heredoc expands $VARS: escape what the shell would otherwise touch
  let json = JSON.stringify(copy, null, 2).replace(/[\\$`]/g, (c) => `\\${c}`);
  for (const { role } of dataImages) json = json.replace(`@@${role}@@`, `$${varName(role)}`);
  lines.push(
    `curl -sS -X POST ${shellQuote(`${origin}/api/v3/contents/generations/tasks`)} \\`,
    '  -H "Authorization: Bearer $SEGUE_KEY" \\',
    '  -H "Content-Type: application/json" \\',
    "  --data-binary @- <<EOF", json, "EOF", "",
    "# then poll the id it answers until status is succeeded:",
    `curl -sS -H "Authorization: Bearer $SEGUE_KEY" \\\n  ${shellQuote(`${origin}/api/v3/contents/generations/tasks/`)}"$ID"`,
  );
  return lines.join("\n");
}

function pyLiteral(value, indent) {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "number") return String(value);
  if (typeof value === "string") {
    const marker = /^@@(\w+)@@$/.exec(value);
    return marker ? `data_url(${JSON.stringify(marker[1])})` : JSON.stringify(value);
  }
  const pad = "    ".repeat(indent + 1);
  const end = "    ".repeat(indent);
  if (Array.isArray(value)) {
    return `[\n${value.map((v) => pad + pyLiteral(v, indent + 1)).join(",\n")},\n${end}]`;
  }
  const items = Object.entries(value)
    .map(([k, v]) => `${JSON.stringify(k)}: ${pyLiteral(v, indent + 1)}`);
  return `{${items.join(", ")}}`;
}

export function pythonSnippet(body, files, origin) {
  const { copy, dataImages } = withMarkers(body);
  const roleFile = Object.fromEntries(dataImages.map(({ role, mime }) =>
    [role, { name: fileName(files, role), mime }]));
  const args = Object.entries(copy).map(([key, value]) => {
    let text = pyLiteral(value, 1);
    for (const [role, file] of Object.entries(roleFile)) {
      text = text.replace(`data_url("${role}")`,
        `data_url(${JSON.stringify(file.name)}, ${JSON.stringify(file.mime)})`);
    }
    return `    ${key}=${text},`;
  });
  return [
    "# pip install byteplus-python-sdk-v2 httpx sniffio",
    "import base64",
    "import os",
    "import time",
    "",
    "from byteplussdkarkruntime import Ark",
    "",
    "",
    'def data_url(path, mime="image/png"):',
    '    with open(path, "rb") as f:',
    '        return f"data:{mime};base64," + base64.b64encode(f.read()).decode()',
    "",
    "",
    `client = Ark(base_url=${JSON.stringify(`${origin}/api/v3`)}, api_key=os.environ["SEGUE_KEY"])`,
    "task = client.content_generation.tasks.create(",
    ...args,
    ")",
    "while True:",
    "    result = client.content_generation.tasks.get(task_id=task.id)",
    '    if result.status not in ("queued", "running"):',
    "        break",
    "    time.sleep(1)",
    'print(result.status, result.content.video_url if result.content else result.error)',
  ].join("\n");
}
