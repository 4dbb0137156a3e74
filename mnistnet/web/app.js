// mnistnet serve: draw a digit, see what the network reads. No libraries.
//
// The pad is white ink on black, as MNIST. While you draw, the pad is sent
// as a PNG to POST api/predict (debounced: at most one request in flight,
// the latest drawing wins); the answer is a `mnistnet-predictions/1`
// document whose entry also carries `image`, the 28x28 picture the network saw.
// Text from the server (class names, the model file's name, its recipe) is
// only ever set with textContent: it is data, never markup.
"use strict";

(() => {
  const DEBOUNCE_MS = 120; // after the last stroke movement
  const MAX_WAIT_MS = 400; // while the pen keeps moving, an answer at least this often
  const SEND_AS_IS = 4 * 1024 * 1024; // larger photos are shrunk (the server takes 5 MiB)
  const PHOTO_SIDE = 1024; // the longer side of a shrunk photo, pixels

  const $ = (id) => document.getElementById(id);
  const app = $("app");
  const pad = $("pad");
  const ink = pad.getContext("2d");
  const seen = $("seen");
  const status = $("status");

  let model = null; // GET api/model
  let hasInk = false;
  let stroke = null; // {id, last, mid} while a pointer draws
  let timer = null;
  let inFlight = false;
  let dirty = false; // drawn since the last request left
  let dirtySince = null; // when, in performance.now() time
  let generation = 0; // bumped by Clear: answers to older drawings are dropped
  let answers = 0;

  // --- drawing ---------------------------------------------------------------------

  function clearPad() {
    ink.fillStyle = "#000"; // opaque black: the server lays transparency onto white
    ink.fillRect(0, 0, pad.width, pad.height);
    ink.strokeStyle = "#fff";
    ink.fillStyle = "#fff";
    ink.lineWidth = pad.width / 14; // about MNIST's stroke once scaled to 20 pixels
    ink.lineCap = "round";
    ink.lineJoin = "round";
    hasInk = false;
  }

  function at(event) {
    const box = pad.getBoundingClientRect();
    return {
      x: ((event.clientX - box.left) * pad.width) / box.width,
      y: ((event.clientY - box.top) * pad.height) / box.height,
    };
  }

  function dot(p) {
    ink.beginPath();
    ink.arc(p.x, p.y, ink.lineWidth / 2, 0, 2 * Math.PI);
    ink.fill();
  }

  // Smooth strokes: a quadratic curve from midpoint to midpoint, through each sample.
  function extend(p) {
    const mid = { x: (stroke.last.x + p.x) / 2, y: (stroke.last.y + p.y) / 2 };
    ink.beginPath();
    ink.moveTo(stroke.mid.x, stroke.mid.y);
    ink.quadraticCurveTo(stroke.last.x, stroke.last.y, mid.x, mid.y);
    ink.stroke();
    stroke.last = p;
    stroke.mid = mid;
  }

  pad.addEventListener("pointerdown", (event) => {
    if (stroke || event.button > 0) return;
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);
    const p = at(event);
    stroke = { id: event.pointerId, last: p, mid: p };
    dot(p);
    drawn();
  });

  pad.addEventListener("pointermove", (event) => {
    if (!stroke || event.pointerId !== stroke.id) return;
    event.preventDefault();
    const samples = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const sample of samples.length ? samples : [event]) extend(at(sample));
    drawn();
  });

  function endStroke(event) {
    if (!stroke || event.pointerId !== stroke.id) return;
    ink.beginPath();
    ink.moveTo(stroke.mid.x, stroke.mid.y);
    ink.lineTo(stroke.last.x, stroke.last.y);
    ink.stroke();
    stroke = null;
    drawn();
  }
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);

  function drawn() {
    const now = performance.now();
    hasInk = true;
    dirty = true;
    if (dirtySince === null) dirtySince = now;
    clearTimeout(timer);
    const wait = Math.min(DEBOUNCE_MS, dirtySince + MAX_WAIT_MS - now);
    timer = setTimeout(sendDrawing, Math.max(0, wait));
    busy();
  }

  function clearAll() {
    generation += 1;
    clearTimeout(timer);
    timer = null;
    dirty = false;
    dirtySince = null;
    stroke = null;
    clearPad();
    showNothing("Draw something.");
    say("");
    busy();
  }

  $("clear").addEventListener("click", clearAll);
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      clearAll();
    }
  });

  // --- asking the server -----------------------------------------------------------

  function busy() {
    app.dataset.busy = String(timer !== null || inFlight);
  }

  function say(text, isError = false) {
    status.textContent = text;
    status.classList.toggle("error", isError);
  }

  async function sendDrawing() {
    timer = null;
    if (inFlight || !dirty || !hasInk) {
      busy();
      return; // an answer in flight sends the latest drawing when it lands
    }
    dirty = false;
    dirtySince = null;
    const blob = await new Promise((resolve) => pad.toBlob(resolve, "image/png"));
    await ask(blob, "image/png");
  }

  async function ask(body, type) {
    const mine = generation;
    inFlight = true;
    busy();
    try {
      const response = await fetch("api/predict", {
        method: "POST",
        headers: { "Content-Type": type },
        body,
      });
      const answer = await response.json();
      if (mine !== generation) return;
      if (response.ok) {
        show(answer.predictions[0]);
        say("");
      } else {
        showNothing("No answer.");
        say(answer.error || `The server answered ${response.status}.`, true);
      }
    } catch (error) {
      if (mine === generation) say("The server did not answer: is mnistnet serve still running?", true);
    } finally {
      inFlight = false;
      answers += 1;
      app.dataset.answers = String(answers);
      if (dirty && timer === null) sendDrawing(); // drawn while this one was away
      busy();
    }
  }

  // --- a photo ---------------------------------------------------------------------

  $("photo").addEventListener("change", async (event) => {
    const file = event.target.files[0];
    if (!file) return;
    clearAll();
    say(`Reading ${file.name}…`);
    try {
      const { body, type } = await uploadable(file);
      await ask(body, type);
      if (!status.classList.contains("error")) say(`Read the photo ${file.name}.`);
    } catch (error) {
      say(`This browser cannot open ${file.name}: choose a PNG or JPEG picture.`, true);
    }
  });

  // PNG and JPEG go as they are (the server applies EXIF orientation); other
  // formats and large files are redrawn as a PNG of at most PHOTO_SIDE pixels.
  async function uploadable(file) {
    const plain = file.type === "image/png" || file.type === "image/jpeg";
    if (plain && file.size <= SEND_AS_IS) return { body: file, type: file.type };
    const bitmap = await createImageBitmap(file);
    const scale = Math.min(1, PHOTO_SIDE / Math.max(bitmap.width, bitmap.height));
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    const context = canvas.getContext("2d");
    context.fillStyle = "#fff"; // transparent parts are paper
    context.fillRect(0, 0, canvas.width, canvas.height);
    context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    const body = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
    return { body, type: "image/png" };
  }

  // --- showing the answer ----------------------------------------------------------

  function show(entry) {
    $("digit").textContent = entry.class_name;
    $("confidence").textContent = `${percent(entry.probability)} sure`;
    const byClass = new Map(entry.top.map((t) => [t.class, t.probability]));
    for (const row of $("bars").children) {
      const p = byClass.get(Number(row.dataset.class)) ?? 0;
      row.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
      row.querySelector(".value").textContent = percent(p);
      row.classList.toggle("best", Number(row.dataset.class) === entry.prediction);
    }
    drawSeen(entry.image);
  }

  function showNothing(text) {
    $("digit").textContent = "?";
    $("confidence").textContent = text;
    for (const row of $("bars").children) {
      row.querySelector(".fill").style.width = "0";
      row.querySelector(".value").textContent = "";
      row.classList.remove("best");
    }
    drawSeen(null);
  }

  function percent(p) {
    return `${(100 * p).toFixed(1)}%`;
  }

  // Each of the 784 pixels as a 7x7 square with a one-pixel gap: visible pixels.
  function drawSeen(pixels) {
    const context = seen.getContext("2d");
    const cell = seen.width / 28;
    context.fillStyle = "#222";
    context.fillRect(0, 0, seen.width, seen.height);
    if (!pixels) return;
    for (let i = 0; i < 784; i += 1) {
      const v = pixels[i];
      context.fillStyle = `rgb(${v},${v},${v})`;
      context.fillRect((i % 28) * cell, Math.floor(i / 28) * cell, cell - 1, cell - 1);
    }
  }

  // --- the model's facts -----------------------------------------------------------

  function buildBars() {
    const bars = $("bars");
    bars.replaceChildren();
    model.classes.forEach((label, k) => {
      const row = document.createElement("li");
      row.dataset.class = String(label);
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = model.class_names[k];
      const track = document.createElement("span");
      track.className = "track";
      track.setAttribute("aria-hidden", "true");
      const fill = document.createElement("span");
      fill.className = "fill";
      track.append(fill);
      const value = document.createElement("span");
      value.className = "value";
      row.append(name, track, value);
      bars.append(row);
    });
  }

  function fact(list, term, text) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = text;
    list.append(dt, dd);
  }

  function showFacts() {
    const facts = $("facts");
    facts.replaceChildren();
    fact(facts, "File", model.path);
    fact(facts, "Task", model.title);
    fact(facts, "Classes", model.class_names.join(", "));
    fact(facts, "Layers", model.layers.join("–"));
    if (model.test_accuracy !== null) {
      const size = model.test_size ? ` (${model.test_size.toLocaleString("en")} images)` : "";
      fact(facts, "Test accuracy", `${(100 * model.test_accuracy).toFixed(2)}%${size}`);
    }
    fact(facts, "sha256", `${model.sha256.slice(0, 10)}…`);
    const recipe = $("recipe");
    recipe.replaceChildren();
    for (const [key, value] of Object.entries(model.recipe)) fact(recipe, key, String(value));
  }

  async function loadModel() {
    try {
      const response = await fetch("api/model");
      model = await response.json();
      buildBars();
      showFacts();
    } catch (error) {
      say("Could not read the model's facts from the server.", true);
    }
  }

  clearPad();
  showNothing("Draw something.");
  loadModel();
})();
