// Forms that the API checks: each problem it names in `errors` is shown under its field (the
// input marked invalid and described by the message), the rest in the form's alert.

import { ApiError } from "./api.js";
import { describeError } from "./layout.js";

/** The form's inputs by name, with their error paragraphs (`#<input id>-error`). */
function fields(form) {
  return [...form.querySelectorAll("input[name], select[name], textarea[name]")].map((input) => ({
    input,
    message: document.getElementById(`${input.id}-error`),
  }));
}

/** Clears every message of `form`. */
export function clearProblems(form, alert) {
  for (const { input, message } of fields(form)) {
    input.removeAttribute("aria-invalid");
    if (message) message.textContent = "";
  }
  if (alert) alert.textContent = "";
}

/**
 * Shows `error` on `form`: field problems next to their fields, the first invalid field
 * focused; anything else in `alert`.
 */
export function showProblems(form, alert, error) {
  clearProblems(form, alert);
  const byName = new Map(fields(form).map((field) => [field.input.name, field]));
  const unplaced = [];
  let first = null;
  const errors = error instanceof ApiError ? error.errors : [];
  for (const { field, detail } of errors) {
    const target = byName.get(field);
    if (!target || !target.message) {
      unplaced.push(`${field} ${detail}`);
      continue;
    }
    target.input.setAttribute("aria-invalid", "true");
    const label = form.querySelector(`label[for="${target.input.id}"]`);
    const name = label ? label.textContent.trim() : field;
    target.message.textContent = sentence(name, detail);
    first = first || target.input;
  }
  if (first) {
    first.focus();
    if (unplaced.length && alert) alert.textContent = `${unplaced.join("; ")}.`;
  } else if (alert) {
    alert.textContent = describeError(error);
  }
}

/** "Email" + "is required" → "Email is required."; a detail that is a sentence of its own stays. */
function sentence(name, detail) {
  const text = /^(is|are|must|contains|cannot|needs|has)\b/.test(detail)
    ? `${name} ${detail}`
    : detail.charAt(0).toUpperCase() + detail.slice(1);
  return /[.!?]$/.test(text) ? text : `${text}.`;
}

/** The form's values by name, text trimmed except passwords. */
export function values(form) {
  const result = {};
  for (const { input } of fields(form)) {
    result[input.name] = input.type === "password" ? input.value : input.value.trim();
  }
  return result;
}

/** Marks the submit button busy while `task` runs; ignores submits meanwhile. */
export function onSubmit(form, task) {
  let busy = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy) return;
    busy = true;
    const button = form.querySelector('button[type="submit"]');
    const label = button ? button.textContent : "";
    if (button) {
      button.setAttribute("aria-disabled", "true");
      button.textContent = button.dataset.busy || "Please wait…";
    }
    try {
      await task();
    } finally {
      busy = false;
      if (button) {
        button.removeAttribute("aria-disabled");
        button.textContent = label;
      }
    }
  });
}
