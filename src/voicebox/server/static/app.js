// voicebox studio: upload or record, clean with A/B and spectrograms, read, transcribe and edit,
// and read in a recorded voice (with the speaker's consent).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { source: null, sourceName: "", cleaned: null, transcript: null, urls: {},
                clone: { reference: null, name: "", clip: null } };
const FINISHED = ["done", "failed", "cancelled"];

// ---------------------------------------------------------------- HTTP

function token() { return localStorage.getItem("voicebox-token") || ""; }

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (token()) headers.set("Authorization", "Bearer " + token());
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) $("token-form").hidden = false;
  if (!response.ok) {
    let message = response.status + " " + response.statusText;
    try { message = (await response.json()).error.message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function showProgress(bar, job) {
  bar.hidden = false;
  const p = job.progress || {};
  const fraction = job.state === "done" ? 1 : (p.fraction ?? 0);
  bar.querySelector("div").style.width = (100 * fraction).toFixed(1) + "%";
  const pct = p.fraction == null && job.state !== "done" ? "" : " " + Math.round(100 * fraction) + "%";
  bar.querySelector("span").textContent = job.state + pct;
}

// Run a task as a background job, following its progress; resolves with {job, blob}.
// `uploads` names other files of the form: {field: [blob, filename]}.
async function runJob(task, params, file, bar, uploads = {}) {
  const form = new FormData();
  form.append("task", task);
  form.append("params", JSON.stringify(params));
  if (file) form.append("file", file, state.sourceName || "audio");
  for (const [field, [blob, name]] of Object.entries(uploads)) form.append(field, blob, name);
  let job = await (await api("/v1/jobs", { method: "POST", body: form })).json();
  showProgress(bar, job);
  while (!FINISHED.includes(job.state)) {
    await sleep(300);
    job = await (await api("/v1/jobs/" + job.id)).json();
    showProgress(bar, job);
  }
  if (job.state !== "done") throw new Error(job.error || "job " + job.state);
  const blob = await (await api(job.result_url)).blob();
  api("/v1/jobs/" + job.id, { method: "DELETE" }).catch(() => {});
  return { job, blob };
}

function objectUrl(key, blob) {
  if (state.urls[key]) URL.revokeObjectURL(state.urls[key]);
  state.urls[key] = URL.createObjectURL(blob);
  return state.urls[key];
}

// ---------------------------------------------------------------- errors, written for the page

// The control each request field is set with, per task; "_" is where other errors of the task go.
const CONTROLS = {
  source: { _: "record" },
  clean: { engine: "clean-engine", strength: "clean-strength", dehum: "clean-dehum",
           loudness: "clean-loudness", file: "file", _: "clean-go" },
  speech: { input: "read-text", text: "read-text", voice: "read-voice", blend: "read-blend-voice",
            speed: "read-speed", pitch: "read-pitch", lang: "read-lang", _: "read-go" },
  transcribe: { file: "file", _: "transcribe-go" },
  edit: { transcript: "words", replace: "words", delete: "words", occurrence: "words",
          consent: "edit-consent", file: "file", _: "edit-go" },
  clone: { input: "clone-text", reference: "clone-ref", file: "clone-ref",
           reference_text: "clone-ref-text", consent: "clone-consent",
           consent_audio: "clone-consent-audio", lang: "clone-lang", _: "clone-go" },
};
// How the page names a field (its label), for messages that name it as a request or flag would.
const LABELS = {
  engine: "Engine", strength: "Strength", dehum: "Remove hum", loudness: "Loudness",
  input: "The text", text: "The text", voice: "Voice", blend: "Blend with", speed: "Speed",
  pitch: "Pitch", lang: "Language", transcript: "The edited words", replace: "The edited words",
  delete: "The edited words", occurrence: "The edited words", file: "The audio file",
  reference: "The voice recording", reference_text: "What the recording says",
  consent: "The consent statement", consent_audio: "The spoken consent",
};
const ALIASES = { language: "lang", "insert-after": "transcript", subtitles: "transcript" };

class PageError extends Error {
  constructor(message, field) { super(message); this.field = field; }
}

function fieldOf(message, task) {
  const known = CONTROLS[task] || {};
  if (task === "clone" && /^consent_audio\b/.test(message)) return "consent_audio";
  const name = (n) => { n = n.toLowerCase(); n = ALIASES[n] || n; return n in known ? n : null; };
  const lead = message.match(/^(?:params\.|body\.)?([a-z_]+):/i);  // "pitch: Input should be ..."
  if (lead && name(lead[1])) return name(lead[1]);
  for (const m of message.matchAll(/--([a-z][\w-]*)|'([a-z_]+)'/gi)) {  // a flag, or 'field'
    if (name(m[1] || m[2])) return name(m[1] || m[2]);
  }
  for (const m of message.matchAll(/[a-z]+/gi)) if (name(m[0]) && m[0] !== "file") return name(m[0]);
  const audio = /^\S+\.\w{2,5}: |readable audio|decode|no audio|samples|sample rate|channels|upload/i;
  if (known.file && audio.test(message)) return "file";
  return "_";
}

// Rewrite what the server says in command-line terms (--pitch, `voicebox voices`, field names)
// into the words on this page.
function forPage(message, field) {
  const label = (f) => LABELS[ALIASES[f] || f] || f.replace(/[-_]/g, " ");
  let text = message
    .replace(/list them with `voicebox voices`/g, "pick one from the Voice list")
    .replace(/`voicebox voices`/g, "the Voice list")
    .replace(/in the 'file' field/g, "as an audio file")
    .replace(/(?:with|run|try)?\s*`voicebox [^`]*`/g, " on the server's command line")
    .replace(/\buse --voice (\S+)/g, "pick the voice $1")
    .replace(/--([a-z][\w-]*)/gi, (_, f) => label(f).toLowerCase())
    .replace(/'(input|file|transcript|reference|consent|consent_audio)'/g, (_, f) => label(f).toLowerCase())
    .replace(/^consent_audio\b/, "The spoken consent");
  const lead = text.match(/^(?:params\.|body\.)?([a-z_]+): Input should be (.*)$/i);
  if (lead) {
    const rule = lead[2]
      .replace(/^greater than or equal to/, "at least")
      .replace(/^less than or equal to/, "at most")
      .replace(/^greater than/, "more than")
      .replace(/^less than/, "less than")
      .replace(/^a valid number.*$/, "a number");
    text = label(lead[1]) + " must be " + rule;
  } else if (field !== "_" && text.startsWith(field + " ")) {
    text = label(field) + text.slice(field.length);
  }
  text = text.replace(/\s+/g, " ").trim();
  if (/^[a-z]+\s/.test(text)) text = text.charAt(0).toUpperCase() + text.slice(1);  // not a file name
  return text + (/[.!?]$/.test(text) ? "" : ".");
}

function clearErrors(task) {
  for (const el of document.querySelectorAll(task ? `.field-error[data-task="${task}"]` : ".field-error")) {
    const control = $(el.dataset.control);
    if (control) {
      for (const c of [control, control.closest("label")]) if (c) c.classList.remove("invalid");
      control.removeAttribute("aria-invalid");
    }
    el.remove();
  }
}

// Show an error next to the control that caused it (the task's button when it is no one control).
function fail(err, task) {
  const raw = err.message || String(err);
  if (!task) {  // not tied to a control (the server is unreachable, say)
    $("error").hidden = false;
    $("error").textContent = raw;
    return;
  }
  const field = err.field || fieldOf(raw, task);
  const id = (CONTROLS[task] || {})[field] || CONTROLS[task]._;
  const control = $(id);
  clearErrors(task);
  const note = document.createElement("div");
  note.className = "field-error";
  note.setAttribute("role", "alert");
  note.dataset.task = task;
  note.dataset.control = id;
  note.id = id + "-error";
  note.textContent = forPage(raw, field);
  const anchor = control.closest("label") || control;
  anchor.insertAdjacentElement("afterend", note);
  if (field !== "_") {
    const shown = control.hidden ? anchor : control;  // the upload input hides inside its label
    shown.classList.add("invalid");
    control.setAttribute("aria-invalid", "true");
    control.setAttribute("aria-describedby", note.id);
    const clear = () => { shown.classList.remove("invalid"); control.removeAttribute("aria-invalid"); note.remove(); };
    control.addEventListener("input", clear, { once: true });
    control.addEventListener("change", clear, { once: true });
  }
}

function clearError() { $("error").hidden = true; $("error").textContent = ""; }

async function busy(button, task, work) {
  clearError();
  clearErrors(task);
  button.disabled = true;
  try { await work(); } catch (err) { fail(err, task); } finally { button.disabled = false; }
}

// ---------------------------------------------------------------- source audio

function setSource(blob, name) {
  state.source = blob;
  state.sourceName = name;
  state.cleaned = null;
  $("source-name").textContent = name + " (" + Math.round(blob.size / 1024) + " KB)";
  const player = $("source-audio");
  player.src = objectUrl("source", blob);
  player.hidden = false;
  $("ab").hidden = true;
  for (const id of ["clean-go", "transcribe-go", "clone-use-source"]) $(id).disabled = false;
}

$("file").addEventListener("change", (e) => {
  const file = e.target.files[0];
  if (file) setSource(file, file.name);
});

let recorder = null;
$("record").addEventListener("click", async () => {
  if (recorder) { recorder.stop(); return; }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.ondataavailable = (e) => chunks.push(e.data);
    recorder.onstop = () => {
      stream.getTracks().forEach((t) => t.stop());
      const type = recorder.mimeType || "audio/webm";
      const ext = type.includes("ogg") ? "ogg" : "webm";
      setSource(new Blob(chunks, { type }), "recording." + ext);
      recorder = null;
      $("record").classList.remove("recording");
      $("record").textContent = "● Record";
    };
    recorder.start();
    $("record").classList.add("recording");
    $("record").textContent = "■ Stop";
  } catch (err) {
    fail(new Error("cannot record: " + err.message), "source");
  }
});

// ---------------------------------------------------------------- clean + A/B

function numberOrNull(id) {
  const v = $(id).value;
  return v === "" ? null : Number(v);
}

// A number box's value, checked against its own min and max before anything is sent.
function checkedNumber(id, field, what) {
  const box = $(id);
  if (box.validity.badInput) throw new PageError(LABELS[field] + " must be a number.", field);
  const v = numberOrNull(id);
  if (v !== null && (v < Number(box.min) || v > Number(box.max))) {
    throw new PageError(`${LABELS[field]} must be between ${box.min} and ${box.max} ${what}.`, field);
  }
  return v;
}

$("clean-go").addEventListener("click", () => busy($("clean-go"), "clean", async () => {
  const params = {
    engine: $("clean-engine").value,
    strength: checkedNumber("clean-strength", "strength", "dB (empty for the default)"),
    dehum: $("clean-dehum").checked,
    loudness: checkedNumber("clean-loudness", "loudness", "LUFS (empty to keep it)"),
    response_format: "wav",
  };
  const { blob } = await runJob("clean", params, state.source, $("clean-progress"));
  state.cleaned = blob;
  $("ab").hidden = false;
  $("clean-download").href = objectUrl("cleaned", blob);
  $("clean-download").download = state.sourceName.replace(/\.[^.]*$/, "") + "-clean.wav";
  selectAB("b");
  await Promise.all([
    Spectrogram.fromBlob($("spec-before"), state.source),
    Spectrogram.fromBlob($("spec-after"), blob),
  ]);
}));

function selectAB(which) {
  const player = $("ab-audio");
  const time = player.currentTime || 0;
  const playing = !player.paused;
  player.src = which === "a" ? state.urls.source : state.urls.cleaned;
  player.dataset.side = which;
  player.addEventListener("loadedmetadata", () => {
    player.currentTime = Math.min(time, player.duration || time);
    if (playing) player.play();
  }, { once: true });
  $("ab-a").classList.toggle("on", which === "a");
  $("ab-b").classList.toggle("on", which === "b");
}
$("ab-a").addEventListener("click", () => selectAB("a"));
$("ab-b").addEventListener("click", () => selectAB("b"));

// ---------------------------------------------------------------- read

async function loadVoices() {
  const { data } = await (await api("/v1/voices")).json();
  const main = $("read-voice"), blend = $("read-blend-voice");
  const rank = (v) => (v.engine === "espeak" ? 2 : v.engine === "piper" ? 0 : 1);
  data.sort((a, b) => rank(a) - rank(b) || a.id.localeCompare(b.id));
  for (const v of data) {
    const label = v.description ? v.id + " — " + v.description : v.id;
    main.add(new Option(label, v.id));
    if (v.engine === "kokoro") blend.add(new Option(v.id, v.id));
  }
}

function syncOutputs() {
  $("read-speed-out").textContent = Number($("read-speed").value).toFixed(2) + "×";
  $("read-pitch-out").textContent = $("read-pitch").value + " st";
  $("read-blend-out").textContent = $("read-blend").value + "%";
}
for (const id of ["read-speed", "read-pitch", "read-blend"]) $(id).addEventListener("input", syncOutputs);

$("read-go").addEventListener("click", () => busy($("read-go"), "speech", async () => {
  if (!$("read-text").value.trim()) throw new PageError("Type some text to read first.", "input");
  const params = {
    input: $("read-text").value,
    voice: $("read-voice").value || null,
    speed: Number($("read-speed").value),
    pitch: Number($("read-pitch").value),
    lang: $("read-lang").value,
    response_format: "wav",
  };
  const other = $("read-blend-voice").value, mix = Number($("read-blend").value) / 100;
  if (other && mix > 0 && params.voice) {
    params.blend = { [params.voice]: 1 - mix, [other]: mix };
  }
  const { blob } = await runJob("speech", params, null, $("read-progress"));
  $("read-result").hidden = false;
  $("read-audio").src = objectUrl("speech", blob);
  $("read-download").href = state.urls.speech;
  $("read-download").download = "speech.wav";
  await Spectrogram.fromBlob($("spec-read"), blob);
}));

// ---------------------------------------------------------------- transcript + edit

function renderWords(transcript) {
  const box = $("words");
  box.textContent = "";
  for (const seg of transcript.segments) {
    for (const w of seg.words) {
      const span = document.createElement("span");
      span.className = "word" + (w.probability < 0.5 ? " low" : "");
      span.contentEditable = "true";
      span.spellcheck = false;
      span.textContent = w.text;
      span.dataset.original = w.text;
      span.title = w.start.toFixed(2) + "–" + w.end.toFixed(2) + " s";
      span.addEventListener("input", () => {
        span.classList.toggle("changed", span.textContent.trim() !== span.dataset.original);
        $("edit-text").value = editedText();
      });
      span.addEventListener("focus", () => {
        const player = $("source-audio");
        player.currentTime = w.start;
      });
      box.appendChild(span);
    }
  }
  $("edit-text").value = editedText();
}

function editedText() {
  return [...document.querySelectorAll("#words .word")]
    .map((s) => s.textContent.trim())
    .filter((t) => t)
    .join(" ");
}

$("transcribe-go").addEventListener("click", () => busy($("transcribe-go"), "transcribe", async () => {
  const { job, blob } = await runJob("transcribe", { response_format: "srt" }, state.source, $("transcribe-progress"));
  state.transcript = job.info.transcript;
  renderWords(state.transcript);
  $("transcript-download").hidden = false;
  $("transcript-download").href = objectUrl("srt", blob);
  $("transcript-download").download = state.sourceName.replace(/\.[^.]*$/, "") + ".srt";
  $("edit-go").disabled = false;
}));

$("edit-go").addEventListener("click", () => busy($("edit-go"), "edit", async () => {
  const text = editedText();
  const original = state.transcript.segments.flatMap((s) => s.words.map((w) => w.text)).join(" ");
  if (text === original) throw new PageError("Change a word first: click a word to edit it.", "transcript");
  const params = { transcript: text, source: state.transcript, response_format: "wav" };
  const consent = $("edit-consent").value.trim();
  if (consent) params.consent = consent;  // our model then speaks in the speaker's own voice
  const { job, blob } = await runJob("edit", params, state.source, $("edit-progress"));
  $("edit-result").hidden = false;
  const plan = job.info.plan || {};
  $("edit-plan").textContent = (plan.steps || [])
    .map((s) => s.kind + ": " + JSON.stringify(s.old) + " → " + JSON.stringify(s.new) +
      (s.voice ? "  (" + (s.voice === "voicebox" ? "the speaker's own voice" : s.voice) + ")" : ""))
    .join("\n");
  $("edit-audio").src = objectUrl("edited", blob);
  $("edit-download").href = state.urls.edited;
  $("edit-download").download = state.sourceName.replace(/\.[^.]*$/, "") + "-edited.wav";
}));

// ---------------------------------------------------------------- clone a voice

function setCloneVoice(blob, name) {
  state.clone.reference = blob;
  state.clone.name = name;
  $("clone-ref-name").textContent = name + " (" + Math.round(blob.size / 1024) + " KB)";
  $("clone-go").disabled = false;
}

$("clone-ref").addEventListener("change", (e) => {
  const file = e.target.files[0];
  if (file) setCloneVoice(file, file.name);
});
$("clone-use-source").addEventListener("click", () => {
  if (state.source) setCloneVoice(state.source, state.sourceName);
});
$("clone-consent-audio").addEventListener("change", (e) => {
  state.clone.clip = e.target.files[0] || null;
  if (state.clone.clip) $("clone-consent-name").textContent = state.clone.clip.name;
});

$("clone-go").addEventListener("click", () => busy($("clone-go"), "clone", async () => {
  const consent = $("clone-consent").value.trim();
  if (!state.clone.reference) throw new PageError("Choose a recording of the voice first.", "reference");
  if (!$("clone-text").value.trim()) throw new PageError("Type the words to read first.", "input");
  if (!consent) {
    throw new PageError("Type the speaker's consent: their own statement that they agree to their voice being used.", "consent");
  }
  const params = { input: $("clone-text").value, consent, response_format: "wav" };
  if ($("clone-ref-text").value.trim()) params.reference_text = $("clone-ref-text").value.trim();
  if ($("clone-lang").value) params.lang = $("clone-lang").value;
  const uploads = { reference: [state.clone.reference, state.clone.name || "voice"] };
  if (state.clone.clip) uploads.consent_audio = [state.clone.clip, state.clone.clip.name];
  const { job, blob } = await runJob("clone", params, null, $("clone-progress"), uploads);
  $("clone-result").hidden = false;
  $("clone-audio").src = objectUrl("clone", blob);
  $("clone-download").href = state.urls.clone;
  $("clone-download").download = (state.clone.name || "voice").replace(/\.[^.]*$/, "") + "-clone.wav";
  const record = job.info.consent || {};
  const how = job.info.route ? " · " + job.info.route : "";
  $("clone-record").textContent = "Consent recorded on the server: " + record.id +
    " (" + record.statement_source + ", " + record.time + ")" + how;
}));

// ---------------------------------------------------------------- start

$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  localStorage.setItem("voicebox-token", $("token").value);
  $("token-form").hidden = true;
  start();
});

async function start() {
  syncOutputs();
  try {
    const health = await (await api("/healthz")).json();
    $("health").textContent = "ready · v" + health.version + " · " + health.jobs.workers + " workers";
    $("health").className = "pill ok";
  } catch (err) {
    $("health").textContent = "offline";
    $("health").className = "pill bad";
    fail(err);
    return;
  }
  try { await loadVoices(); } catch (err) { fail(err); }
}

start();
