// Building the page from data without ever parsing data as HTML: every string becomes a text node or an
// attribute value, so nothing an API returns can inject markup or script (and the CSP forbids inline script).

let nextId = 0;

/** A unique element id, for tying labels, hints and errors to their inputs. */
export function uid(prefix) {
  nextId += 1;
  return `${prefix}-${nextId}`;
}

function append(parent, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(child instanceof Node ? child : String(child));
  }
}

/**
 * `h('button', { type: 'submit', onclick: fn }, 'Save')`. Props starting with `on` add listeners; `true`
 * sets a boolean attribute; `false`, `null` and `undefined` leave it out.
 */
export function h(tag, props, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') element.addEventListener(name.slice(2), value);
    else if (name === 'class') element.className = value;
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  append(element, children);
  return element;
}

/** Replaces an element's content. */
export function show(element, ...children) {
  element.replaceChildren();
  append(element, children);
}

/**
 * A labelled input with an optional hint; returns the wrapper (the input is `.input`).
 * `attributes` go onto the input (type, autocomplete, inputmode, required, …).
 */
export function field(label, name, attributes = {}, hint) {
  const id = uid(name);
  const hintId = hint ? `${id}-hint` : undefined;
  const input = h('input', { id, name, type: 'text', 'aria-describedby': hintId, ...attributes });
  const wrapper = h('div', { class: 'field' }, h('label', { for: id }, label), hint ? h('p', { class: 'hint', id: hintId }, hint) : null, input);
  wrapper.input = input;
  return wrapper;
}

/** A password field that browsers and password managers recognise. */
export function passwordField(label = 'Password', autocomplete = 'current-password') {
  return field(label, 'password', { type: 'password', autocomplete, required: true });
}

/** A field for a one-time code: numeric keyboard on phones, autofill from SMS where the platform offers it. */
export function codeField(label, { length = 6, hint } = {}) {
  return field(label, 'code', { autocomplete: 'one-time-code', inputmode: 'numeric', maxlength: length ?? 16, required: true, spellcheck: 'false', class: 'code-input' }, hint);
}

/**
 * A form whose submit runs `action(values)`. While it runs the submit button is disabled; an error is shown
 * in the form's alert area (and the field it names gets focus). Returns the form.
 */
export function form(props, children, action) {
  const alert = h('p', { class: 'form-error', role: 'alert' });
  const element = h('form', props, alert, children);
  element.addEventListener('submit', async (event) => {
    event.preventDefault();
    const submitter = element.querySelector('[type="submit"]');
    alert.textContent = '';
    if (submitter) submitter.disabled = true;
    element.setAttribute('aria-busy', 'true');
    try {
      await action(Object.fromEntries(new FormData(element)), element);
    } catch (error) {
      alert.textContent = messageOf(error);
      const named = error?.param ? element.querySelector(`[name="${CSS.escape(error.param)}"]`) : null;
      (named ?? element.querySelector('input:not([type="hidden"])'))?.focus();
    } finally {
      if (submitter?.isConnected) submitter.disabled = false;
      element.removeAttribute('aria-busy');
    }
  });
  return element;
}

/** A button whose click runs `action`; disabled while it runs, errors go to `onError` or an alert next to it. */
export function actionButton(label, action, { onError, class: className } = {}) {
  const button = h('button', { type: 'button', class: className });
  button.textContent = label;
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      await action();
    } catch (error) {
      if (onError) onError(error);
      else announce(messageOf(error), { assertive: true });
    } finally {
      if (button.isConnected) button.disabled = false;
    }
  });
  return button;
}

export function messageOf(error) {
  return error instanceof Error ? error.message : String(error);
}

/** Says something to screen-reader users (and shows it briefly) without moving focus. */
export function announce(message, { assertive = false } = {}) {
  let region = document.getElementById('announcer');
  if (!region) {
    region = h('div', { id: 'announcer', class: 'toast', role: 'status', 'aria-live': 'polite' });
    document.body.append(region);
  }
  region.setAttribute('aria-live', assertive ? 'assertive' : 'polite');
  region.textContent = message;
  clearTimeout(region.hideTimer);
  region.hideTimer = setTimeout(() => {
    region.textContent = '';
  }, 6000);
}

/** Moves focus to a freshly rendered view's heading so keyboard and screen-reader users start there. */
export function focusHeading(container) {
  const heading = container.querySelector('h1, h2');
  if (!heading) return;
  heading.setAttribute('tabindex', '-1');
  heading.focus({ preventScroll: false });
}

/** A value to copy: read-only input (selectable, not editable) plus a Copy button. */
export function copyable(label, value) {
  const id = uid('copy');
  const input = h('input', { id, type: 'text', readonly: true, value, spellcheck: 'false', class: 'mono', 'data-secret': true });
  const copy = h('button', { type: 'button', class: 'secondary' }, 'Copy');
  copy.addEventListener('click', async () => {
    input.select();
    try {
      await navigator.clipboard.writeText(value);
      announce(`${label} copied`);
    } catch {
      announce('Press Ctrl+C (or ⌘C) to copy the selected text');
    }
  });
  return h('div', { class: 'field' }, h('label', { for: id }, label), h('div', { class: 'copy-row' }, input, copy));
}
