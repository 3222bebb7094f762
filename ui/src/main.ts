// Hash router: #/incidents, #/incident/ID, #/processes[/ID], #/health.
import "./style.css";
import { ApiError, setToken, stream } from "./api";
import { clear, h } from "./dom";
import { incidentsPage } from "./pages/incidents";
import { incidentPage } from "./pages/incident";
import { processPage } from "./pages/process";
import { healthPage } from "./pages/health";

const app = document.getElementById("app") as HTMLElement;
type Cleanup = (() => void) | void;
let cleanup: Cleanup;

/** Listeners of the live incident stream (pages subscribe while shown). */
export const live = new Set<(data: string) => void>();

function tokenForm(): HTMLElement {
  const input = h("input", { type: "password", placeholder: "API token", id: "token" });
  const form = h("form", { class: "token", onsubmit: (e: Event) => {
    e.preventDefault(); setToken(input.value.trim()); void route();
  } }, h("p", {}, "This server requires an API token (printed by causeway at first start)."), input,
    h("button", { type: "submit" }, "Use token"));
  return form;
}

export function showError(e: unknown): void {
  clear(app);
  if (e instanceof ApiError && e.status === 401) { app.appendChild(tokenForm()); return; }
  app.appendChild(h("p", { class: "error" }, e instanceof Error ? e.message : String(e)));
}

async function route(): Promise<void> {
  if (typeof cleanup === "function") cleanup();
  cleanup = undefined;
  clear(app);
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  const page = parts[0] || "incidents";
  const arg = parts.slice(1).join("/");
  for (const a of document.querySelectorAll<HTMLAnchorElement>("nav a")) {
    a.classList.toggle("active", a.dataset.nav === page || (page === "incident" && a.dataset.nav === "incidents")
      || (page === "process" && a.dataset.nav === "processes"));
  }
  try {
    if (page === "incident" && arg) cleanup = await incidentPage(app, decodeURIComponent(arg));
    else if ((page === "process" || page === "processes")) cleanup = await processPage(app, arg ? decodeURIComponent(arg) : "");
    else if (page === "health") cleanup = await healthPage(app);
    else cleanup = await incidentsPage(app);
  } catch (e) {
    showError(e);
  }
}

window.addEventListener("hashchange", () => void route());
const dot = document.getElementById("live") as HTMLElement;
stream((name, data) => {
  if (name === "incident" || name === "lagged") for (const f of live) f(data);
}, (up) => dot.classList.toggle("up", up));
void route();
