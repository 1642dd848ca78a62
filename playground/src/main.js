// The playground page: files in tabs, options, findings, fixes and rule
// docs. Every analysis is done by upkeep's own core (WebAssembly) in a Web
// Worker; nothing is sent to any server.
import { EditorState } from "@codemirror/state";
import { EditorView } from "@codemirror/view";
import { basicSetup } from "codemirror";
import { StreamLanguage } from "@codemirror/language";
import { nginx } from "@codemirror/legacy-modes/mode/nginx";
import { setDiagnostics, lintGutter } from "@codemirror/lint";
import { encodeState, decodeState } from "./state.js";
// The README's example (examples/shop), shown when the page opens without a
// shared link.
import shopMain from "../../examples/shop/nginx.conf";
import shopUpstreams from "../../examples/shop/conf.d/upstreams.conf";
import shopSite from "../../examples/shop/conf.d/shop.conf";
import shopMime from "../../examples/shop/mime.types";

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- worker

// Two workers: one answers analyses, explain and the nginx -T split; the
// other computes "fix all" (several check rounds), so a new analysis never
// waits behind it.
const workers = { analysis: new Worker("worker.js", { type: "module" }), fixes: new Worker("worker.js", { type: "module" }) };
let nextId = 1;
const pending = new Map();
function onAnswer(event) {
  const waiting = pending.get(event.data.id);
  if (!waiting) return;
  pending.delete(event.data.id);
  const roundTripMs = performance.now() - waiting.posted;
  if (!event.data.ok) {
    waiting.resolve({ ok: false, error: { message: "internal error: " + event.data.result, rendered: event.data.result } });
    return;
  }
  const answer = JSON.parse(event.data.result);
  answer.roundTripMs = roundTripMs;
  waiting.resolve(answer);
}
workers.analysis.onmessage = onAnswer;
workers.fixes.onmessage = onAnswer;

function call(op, arg) {
  return new Promise((resolve) => {
    const id = nextId++;
    pending.set(id, { resolve, posted: performance.now() });
    (op === "fix_all" ? workers.fixes : workers.analysis).postMessage({ id, op, arg });
  });
}

// ----------------------------------------------------------------- state

const defaultState = () => ({
  files: [
    { path: "nginx.conf", text: shopMain },
    { path: "conf.d/upstreams.conf", text: shopUpstreams },
    { path: "conf.d/shop.conf", text: shopSite },
    { path: "mime.types", text: shopMime },
  ],
  main: "nginx.conf",
  active: 0,
  version: "",
  front: "",
  frontIdle: "",
  backends: "",
  cpus: "",
  unsafeFixes: false,
  settings: "",
});

let model = defaultState();
// One EditorState per file, so each keeps its own undo history.
const editorStates = new Map();
let lastReport = null;
let lastFixAll = null;
let generation = 0;

const language = StreamLanguage.define(nginx);

function makeState(text, onChange) {
  return EditorState.create({
    doc: text,
    extensions: [
      basicSetup,
      language,
      lintGutter(),
      EditorView.updateListener.of((u) => {
        if (u.docChanged) onChange(u.state);
      }),
      EditorView.domEventHandlers({ paste: onPaste }),
    ],
  });
}

function fileState(path) {
  let st = editorStates.get(path);
  if (!st) {
    const file = model.files.find((f) => f.path === path);
    st = makeState(file ? file.text : "", (s) => fileEdited(path, s));
    editorStates.set(path, st);
  }
  return st;
}

function fileEdited(path, st) {
  editorStates.set(path, st);
  const file = model.files.find((f) => f.path === path);
  if (file) file.text = st.doc.toString();
  changed();
}

const view = new EditorView({ parent: $("editor") });

const settingsView = new EditorView({
  parent: $("settings"),
  state: EditorState.create({
    doc: "",
    extensions: [
      basicSetup,
      EditorView.updateListener.of((u) => {
        if (u.docChanged) {
          model.settings = u.state.doc.toString();
          changed();
        }
      }),
    ],
  }),
});

function activePath() {
  const f = model.files[model.active];
  return f ? f.path : null;
}

// ------------------------------------------------------------------ tabs

function renderTabs() {
  const tabs = $("tabs");
  tabs.replaceChildren();
  model.files.forEach((f, i) => {
    const tab = document.createElement("div");
    tab.className = "tab" + (i === model.active ? " active" : "");
    tab.dataset.path = f.path;
    const name = document.createElement("button");
    name.className = "tab-name";
    name.textContent = f.path + (f.path === model.main ? " (main)" : "");
    const count = findingsIn(f.path).length;
    if (count) {
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = String(count);
      name.append(" ", badge);
    }
    name.title = "Double-click to rename";
    name.onclick = () => selectFile(i);
    name.ondblclick = () => renameFile(i);
    const close = document.createElement("button");
    close.className = "tab-close";
    close.textContent = "×";
    close.title = "Remove " + f.path;
    close.onclick = () => removeFile(i);
    tab.append(name, close);
    tabs.append(tab);
  });
  const main = $("main-file");
  main.replaceChildren(...model.files.map((f) => new Option(f.path, f.path, false, f.path === model.main)));
}

function selectFile(i) {
  model.active = Math.max(0, Math.min(i, model.files.length - 1));
  const path = activePath();
  if (path) view.setState(fileState(path));
  renderTabs();
  showDiagnostics();
  changed({ analyse: false });
}

function addFile() {
  let n = 1;
  while (model.files.some((f) => f.path === `conf.d/new${n}.conf`)) n++;
  model.files.push({ path: `conf.d/new${n}.conf`, text: "" });
  selectFile(model.files.length - 1);
  changed();
}

function renameFile(i) {
  const old = model.files[i].path;
  const path = prompt("File path (includes resolve against the main file's directory):", old);
  if (!path || path === old || model.files.some((f) => f.path === path)) return;
  const st = editorStates.get(old);
  editorStates.delete(old);
  model.files[i].path = path;
  if (st) {
    // A fresh state whose listener knows the new path.
    editorStates.set(path, makeState(st.doc.toString(), (s) => fileEdited(path, s)));
  }
  if (model.main === old) model.main = path;
  selectFile(i);
  changed();
}

function removeFile(i) {
  const [gone] = model.files.splice(i, 1);
  editorStates.delete(gone.path);
  if (model.main === gone.path) model.main = model.files[0] ? model.files[0].path : "";
  if (model.files.length === 0) model.files.push({ path: "nginx.conf", text: "" });
  selectFile(Math.min(model.active, model.files.length - 1));
  changed();
}

function replaceFiles(files, main) {
  editorStates.clear();
  model.files = files;
  model.main = main;
  model.active = 0;
  selectFile(0);
  changed();
}

// `nginx -T` output pasted anywhere in the editor becomes its files.
function onPaste(event) {
  const text = event.clipboardData && event.clipboardData.getData("text/plain");
  if (!text || !/^# configuration file [^\n]*:$/m.test(text)) return false;
  event.preventDefault();
  importDump(text);
  return true;
}

async function importDump(text) {
  const r = await call("split_nginx_t", text);
  if (!r.ok) {
    setStatus("error", r.error.message);
    return;
  }
  replaceFiles(r.files.map((f) => ({ path: f.path, text: f.text })), r.main);
}

// --------------------------------------------------------------- options

async function loadOptions() {
  const o = await call("options", "");
  $("versions").replaceChildren(...o.versions.map((v) => new Option(v, v)));
  $("version").placeholder = `${o.default_version} (assumed)`;
  $("front").replaceChildren(
    new Option("none", ""),
    ...o.fronts.map((p) => new Option(`${p.name} (${p.display}, idle ${p.idle_timeout_ms / 1000}s)`, p.name)),
  );
  $("backend-profile").replaceChildren(
    ...o.backends.map((p) => new Option(`${p.name} (${p.display})`, p.name)),
  );
  $("front").value = model.front;
}

function upstreamNames() {
  const names = new Set();
  for (const f of model.files) {
    for (const m of f.text.matchAll(/^\s*upstream\s+([^\s{]+)\s*\{/gm)) names.add(m[1]);
  }
  return [...names];
}

function renderUpstreams() {
  const sel = $("backend-upstream");
  const current = sel.value;
  sel.replaceChildren(...upstreamNames().map((n) => new Option(n, n)));
  if (current) sel.value = current;
}

function addBackend() {
  const upstream = $("backend-upstream").value;
  const profile = $("backend-profile").value;
  if (!upstream || !profile) return;
  const specs = splitSpecs(model.backends).filter((s) => !s.startsWith(upstream + "="));
  specs.push(`${upstream}=${profile}`);
  model.backends = specs.join("; ");
  $("backends").value = model.backends;
  changed();
}

// Backend specs are separated by `;` (a spec itself may hold commas:
// `api=idle=5s,max-requests=100`).
function splitSpecs(text) {
  return text.split(/[;\n]/).map((s) => s.trim()).filter(Boolean);
}

function bindOptions() {
  const bind = (id, key, prop = "value") => {
    $(id).addEventListener("input", () => {
      model[key] = $(id)[prop];
      changed();
    });
  };
  bind("version", "version");
  bind("front", "front");
  bind("front-idle", "frontIdle");
  bind("backends", "backends");
  bind("cpus", "cpus");
  bind("unsafe-fixes", "unsafeFixes", "checked");
  $("main-file").addEventListener("change", () => {
    model.main = $("main-file").value;
    renderTabs();
    changed();
  });
  $("add-backend").onclick = addBackend;
  $("add-file").onclick = addFile;
  $("import-dump").onclick = () => $("dump-dialog").showModal();
  $("dump-cancel").onclick = () => $("dump-dialog").close();
  $("dump-ok").onclick = () => {
    const text = $("dump-text").value;
    $("dump-dialog").close();
    $("dump-text").value = "";
    importDump(text);
  };
  $("copy-link").onclick = copyLink;
  $("copy-markdown").onclick = copyMarkdown;
  $("apply-all").onclick = () => lastFixAll && applyFiles(lastFixAll.files);
  $("explain-close").onclick = () => ($("explain").hidden = true);
}

function showOptions() {
  $("version").value = model.version;
  $("front").value = model.front;
  $("front-idle").value = model.frontIdle;
  $("backends").value = model.backends;
  $("cpus").value = model.cpus;
  $("unsafe-fixes").checked = !!model.unsafeFixes;
  settingsView.dispatch({
    changes: { from: 0, to: settingsView.state.doc.length, insert: model.settings || "" },
  });
}

function request() {
  const files = {};
  for (const f of model.files) files[f.path] = f.text;
  const cpus = parseInt(model.cpus, 10);
  return JSON.stringify({
    files,
    main: model.main || null,
    nginx_version: model.version.trim() || null,
    front: model.front || null,
    front_idle: model.frontIdle.trim() || null,
    backends: splitSpecs(model.backends),
    settings: model.settings || "",
    cpus: Number.isFinite(cpus) && cpus > 0 ? cpus : null,
    unsafe_fixes: !!model.unsafeFixes,
  });
}

// -------------------------------------------------------------- analysis

let analyseTimer = null;
let hashTimer = null;

function changed({ analyse = true } = {}) {
  clearTimeout(hashTimer);
  hashTimer = setTimeout(saveHash, 300);
  if (!analyse) return;
  // `data-pending` is 1 from an edit until the analysis of the last edit
  // is shown.
  $("status").dataset.pending = "1";
  clearTimeout(analyseTimer);
  analyseTimer = setTimeout(analyseNow, 200);
}

function settled(gen) {
  if (gen === generation && analyseTimer === null) $("status").dataset.pending = "0";
}

function setStatus(state, text) {
  const s = $("status");
  s.dataset.state = state;
  s.textContent = text;
}

async function analyseNow() {
  analyseTimer = null;
  const gen = ++generation;
  const req = request();
  const lines = model.files.reduce((n, f) => n + f.text.split("\n").length, 0);
  setStatus("busy", "analysing…");
  const r = await call("analyse", req);
  if (gen !== generation) return; // Superseded by a later edit.
  const status = $("status");
  status.dataset.generation = String(gen);
  status.dataset.ms = r.roundTripMs.toFixed(1);
  status.dataset.lines = String(lines);
  lastReport = r;
  lastFixAll = null;
  renderUpstreams();
  if (!r.ok) {
    renderError(r.error);
    renderTabs();
    showDiagnostics();
    renderFixAll(null);
    setStatus("done", `error: ${r.error.message}`);
    settled(gen);
    return;
  }
  renderFindings(r);
  renderTabs();
  showDiagnostics();
  const s = r.summary;
  setStatus(
    "done",
    `${r.findings.length} finding(s): ${s.errors} error(s), ${s.warnings} warning(s), ${s.infos} info(s) · nginx ${r.nginx_version} (${r.version_source}) · ${lines} lines analysed in ${r.roundTripMs.toFixed(0)} ms`,
  );
  settled(gen);
  $("fix-all-diff").textContent = "computing…";
  const f = await call("fix_all", req);
  if (gen !== generation) return;
  lastFixAll = f.ok ? f : null;
  renderFixAll(f);
}

function findingsIn(path) {
  if (!lastReport || !lastReport.ok) return [];
  return lastReport.findings.filter((f) => f.file === path);
}

function offset(doc, line, column) {
  const l = doc.line(Math.max(1, Math.min(line, doc.lines)));
  return Math.min(l.from + Math.max(0, column - 1), l.to);
}

function spanRange(doc, s) {
  const from = offset(doc, s.line, s.column);
  let to = offset(doc, s.end_line ?? s.line, s.end_column ?? s.column);
  if (to < from) to = from;
  return { from, to };
}

const severityOf = { error: "error", warning: "warning", info: "info" };

function showDiagnostics() {
  const path = activePath();
  const doc = view.state.doc;
  const diagnostics = [];
  if (lastReport && !lastReport.ok) {
    const e = lastReport.error;
    if (e.file === path && e.line) {
      const at = offset(doc, e.line, e.column || 1);
      diagnostics.push({ from: at, to: Math.min(at + 1, doc.length), severity: "error", message: e.message, source: "upkeep" });
    }
  } else if (lastReport) {
    lastReport.findings.forEach((f, i) => {
      if (f.file === path && f.line) {
        const { from, to } = spanRange(doc, f);
        diagnostics.push({
          from,
          to,
          severity: severityOf[f.severity] || "info",
          source: f.rule,
          message: f.label ? `${f.message}\n${f.label}` : f.message,
          actions: diagnosticActions(f, i),
        });
      }
      for (const r of f.related) {
        if (r.file === path && r.line) {
          const { from, to } = spanRange(doc, r);
          diagnostics.push({ from, to, severity: "hint", source: f.rule, message: `${r.message} (related to ${f.rule}: ${f.message})` });
        }
      }
    });
    for (const w of lastReport.warnings) {
      if (w.file === path) {
        const at = offset(doc, w.line, w.column);
        diagnostics.push({ from: at, to: doc.line(w.line).to, severity: "warning", source: "load", message: w.message });
      }
    }
  }
  view.dispatch(setDiagnostics(view.state, diagnostics));
}

function diagnosticActions(f, i) {
  const actions = [{ name: "Explain " + f.rule, apply: () => explain(f.rule) }];
  if (f.fix_regions) actions.push({ name: "Apply fix", apply: () => applyRegions(f.fix_regions) });
  actions.push({ name: "Show", apply: () => reveal(i) });
  return actions;
}

function reveal(i) {
  const el = document.querySelector(`#findings .finding[data-index="${i}"]`);
  if (el) el.scrollIntoView({ block: "nearest" });
}

function goTo(file, line, column) {
  const i = model.files.findIndex((f) => f.path === file);
  if (i < 0) return;
  if (i !== model.active) selectFile(i);
  const at = offset(view.state.doc, line, column);
  view.dispatch({ selection: { anchor: at }, scrollIntoView: true });
  view.focus();
}

function place(file, line, column) {
  return line ? `${file}:${line}:${column}` : file || "";
}

function renderError(e) {
  const list = $("findings");
  const el = document.createElement("div");
  el.className = "finding error load-error";
  const pre = document.createElement("pre");
  pre.textContent = e.rendered || e.message;
  el.append(pre);
  if (e.file && e.line) {
    el.classList.add("clickable");
    el.onclick = () => goTo(e.file, e.line, e.column || 1);
  }
  list.replaceChildren(el);
}

function renderFindings(r) {
  const list = $("findings");
  const items = r.findings.map((f, i) => {
    const el = document.createElement("div");
    el.className = `finding ${f.severity}`;
    el.dataset.rule = f.rule;
    el.dataset.index = String(i);
    const head = document.createElement("div");
    head.className = "finding-head";
    const rule = document.createElement("button");
    rule.className = "rule";
    rule.textContent = f.rule;
    rule.title = `${f.name}: show the rule's documentation`;
    rule.onclick = () => explain(f.rule);
    const sev = document.createElement("span");
    sev.className = "severity";
    sev.textContent = f.severity;
    const loc = document.createElement("button");
    loc.className = "location";
    loc.textContent = place(f.file, f.line, f.column);
    loc.onclick = () => f.line && goTo(f.file, f.line, f.column);
    head.append(rule, " ", sev, " ", loc);
    const msg = document.createElement("div");
    msg.className = "message";
    msg.textContent = f.message;
    el.append(head, msg);
    if (f.label) el.append(line("label", f.label));
    for (const rel of f.related) {
      const r = line("related", `${place(rel.file, rel.line, rel.column)}: ${rel.message}`);
      r.classList.add("clickable");
      r.onclick = () => rel.line && goTo(rel.file, rel.line, rel.column);
      el.append(r);
    }
    for (const n of f.notes) el.append(line("note", "note: " + n));
    if (f.help) el.append(line("help", "help: " + f.help));
    if (f.fix_diff) {
      const fix = document.createElement("details");
      fix.className = "fix";
      fix.open = true;
      const sum = document.createElement("summary");
      sum.textContent = `fix (${f.fix.applicability}): ${f.fix.description}`;
      const apply = document.createElement("button");
      apply.className = "apply-fix";
      apply.textContent = "Apply";
      apply.onclick = (e) => {
        e.preventDefault();
        applyRegions(f.fix_regions);
      };
      sum.append(" ", apply);
      fix.append(sum, diffBlock(f.fix_diff, "fix-diff"));
      el.append(fix);
    }
    return el;
  });
  if (items.length === 0) {
    const none = document.createElement("div");
    none.className = "none";
    none.textContent = "No findings.";
    items.push(none);
  }
  list.replaceChildren(...items);
}

function line(cls, text) {
  const d = document.createElement("div");
  d.className = cls;
  d.textContent = text;
  return d;
}

function diffBlock(diff, cls) {
  const pre = document.createElement("pre");
  pre.className = "diff " + cls;
  for (const l of diff.split("\n")) {
    const span = document.createElement("span");
    span.className = l.startsWith("+") && !l.startsWith("+++") ? "add" : l.startsWith("-") && !l.startsWith("---") ? "del" : l.startsWith("@@") ? "hunk" : "";
    span.textContent = l + "\n";
    pre.append(span);
  }
  return pre;
}

function renderFixAll(f) {
  const box = $("fix-all-diff");
  $("apply-all").disabled = !(f && f.ok && f.diff);
  if (!f) {
    box.replaceChildren();
    box.textContent = "";
    return;
  }
  if (!f.ok) {
    box.textContent = f.error.message;
    return;
  }
  if (!f.diff) {
    box.textContent = "Nothing to fix.";
    return;
  }
  const notes = [];
  for (const r of f.refused) notes.push(`not fixed: ${r.rule} ${r.description}: ${r.reason}`);
  if (f.left) notes.push(`${f.left} finding(s) left that need a decision`);
  box.replaceChildren(diffBlock(f.diff, "fix-all"), ...notes.map((n) => line("note", n)));
}

// One finding's fix: in each file, `line_count` lines from `start_line`
// are replaced by `text` (as one undoable edit).
function applyRegions(regions) {
  for (const [path, r] of Object.entries(regions || {})) {
    const doc = fileState(path).doc;
    const from = doc.line(Math.min(r.start_line, doc.lines)).from;
    const last = r.start_line + r.line_count - 1;
    const to = r.line_count === 0 ? from : last >= doc.lines ? doc.length : doc.line(last + 1).from;
    edit(path, { changes: { from, to, insert: r.text } });
  }
}

function edit(path, spec) {
  if (path === activePath()) view.dispatch(spec);
  else fileEdited(path, fileState(path).update(spec).state);
}

// New texts replace the files' contents as one edit each (undoable), the
// changed region only.
function applyFiles(files) {
  for (const [path, text] of Object.entries(files || {})) {
    const st = fileState(path);
    const old = st.doc.toString();
    let start = 0;
    while (start < old.length && start < text.length && old[start] === text[start]) start++;
    let endOld = old.length;
    let endNew = text.length;
    while (endOld > start && endNew > start && old[endOld - 1] === text[endNew - 1]) {
      endOld--;
      endNew--;
    }
    edit(path, { changes: { from: start, to: endOld, insert: text.slice(start, endNew) } });
  }
}

// ------------------------------------------------------------------ docs

async function explain(rule) {
  const r = await call("explain", rule);
  const panel = $("explain");
  panel.hidden = false;
  const body = $("explain-body");
  if (!r.ok) {
    body.textContent = r.error.message;
    return;
  }
  const head = document.createElement("h2");
  head.textContent = `${r.id} ${r.name}`;
  const meta = line("meta", `Severity: ${r.severity}; ${r.fixable ? "fixable with `upkeep fix`" : "no automatic fix"}.`);
  const summary = document.createElement("p");
  summary.textContent = r.summary;
  body.replaceChildren(head, meta, summary, ...markdown(r.doc));
  panel.dataset.rule = r.id;
}

// The rule docs' Markdown: headings, code fences and paragraphs, as text
// nodes (never as HTML).
function markdown(text) {
  const out = [];
  let para = [];
  let code = null;
  const flush = () => {
    if (para.length) {
      const p = document.createElement("p");
      p.textContent = para.join(" ");
      out.push(p);
      para = [];
    }
  };
  for (const l of text.split("\n")) {
    if (code !== null) {
      if (l.startsWith("```")) {
        const pre = document.createElement("pre");
        pre.textContent = code.join("\n");
        out.push(pre);
        code = null;
      } else code.push(l);
    } else if (l.startsWith("```")) {
      flush();
      code = [];
    } else if (/^#{1,6} /.test(l)) {
      flush();
      const h = document.createElement("h3");
      h.textContent = l.replace(/^#+ /, "");
      out.push(h);
    } else if (l.trim() === "") flush();
    else if (/^\s*[-*] /.test(l)) {
      flush();
      out.push(line("item", "• " + l.replace(/^\s*[-*] /, "")));
    } else para.push(l.trim());
  }
  flush();
  if (code) {
    const pre = document.createElement("pre");
    pre.textContent = code.join("\n");
    out.push(pre);
  }
  return out;
}

// ----------------------------------------------------- links and reports

function snapshot() {
  return {
    v: 1,
    files: model.files.map((f) => [f.path, f.text]),
    main: model.main,
    active: model.active,
    version: model.version,
    front: model.front,
    frontIdle: model.frontIdle,
    backends: model.backends,
    cpus: model.cpus,
    unsafeFixes: model.unsafeFixes,
    settings: model.settings,
  };
}

function restore(s) {
  const m = defaultState();
  m.files = (s.files || []).map(([path, text]) => ({ path, text }));
  if (m.files.length === 0) m.files.push({ path: "nginx.conf", text: "" });
  for (const key of ["main", "version", "front", "frontIdle", "backends", "cpus", "settings"]) {
    if (typeof s[key] === "string") m[key] = s[key];
  }
  m.unsafeFixes = !!s.unsafeFixes;
  m.active = Number.isInteger(s.active) ? s.active : 0;
  return m;
}

async function saveHash() {
  const encoded = await encodeState(snapshot());
  history.replaceState(null, "", "#s=" + encoded);
}

async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const ta = document.createElement("textarea");
    ta.value = text;
    document.body.append(ta);
    ta.select();
    const ok = document.execCommand("copy");
    ta.remove();
    return ok;
  }
}

async function copyLink() {
  clearTimeout(hashTimer);
  await saveHash();
  const ok = await copyText(location.href);
  flash(ok ? "link copied" : "copy the address bar's link");
}

function markdownReport() {
  const out = ["## upkeep playground", ""];
  const r = lastReport;
  const opts = [];
  if (r && r.ok) opts.push(`nginx ${r.nginx_version} (${r.version_source})`);
  if (model.front) opts.push(`front: ${model.front}`);
  if (model.frontIdle) opts.push(`front idle: ${model.frontIdle}`);
  for (const b of splitSpecs(model.backends)) opts.push(`backend ${b}`);
  if (opts.length) out.push(opts.join(" · "), "");
  if (r && !r.ok) out.push("Error:", "", "```", (r.error.rendered || r.error.message).trimEnd(), "```", "");
  if (r && r.ok) {
    out.push(`### Findings (${r.findings.length})`, "");
    for (const f of r.findings) out.push(`- **${f.rule}** ${f.name} (${f.severity}) \`${place(f.file, f.line, f.column)}\`: ${f.message}`);
    out.push("");
  }
  out.push("### Configuration", "");
  for (const f of model.files) {
    out.push(`\`${f.path}\`${f.path === model.main ? " (main)" : ""}`, "", "```nginx", f.text.trimEnd(), "```", "");
  }
  if (model.settings.trim()) out.push("`upkeep.toml`", "", "```toml", model.settings.trimEnd(), "```", "");
  out.push(`[Open in the playground](${location.href})`, "");
  return out.join("\n");
}

async function copyMarkdown() {
  clearTimeout(hashTimer);
  await saveHash();
  const ok = await copyText(markdownReport());
  flash(ok ? "Markdown copied" : "copy failed");
}

function flash(text) {
  const el = $("flash");
  el.textContent = text;
  clearTimeout(flash.timer);
  flash.timer = setTimeout(() => (el.textContent = ""), 2500);
}

// ------------------------------------------------------------------ start

async function start() {
  if (location.hash.startsWith("#s=")) {
    try {
      model = restore(await decodeState(location.hash.slice(3)));
    } catch (e) {
      flash("the link's state could not be read: " + e.message);
      model = defaultState();
    }
  }
  bindOptions();
  await loadOptions();
  showOptions();
  selectFile(Math.min(model.active, model.files.length - 1));
  analyseNow();
}

window.upkeepPlayground = { markdownReport };
start();
