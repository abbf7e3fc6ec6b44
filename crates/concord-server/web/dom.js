// Small DOM helpers. User content only ever goes through textContent.

/** The element with this id. */
export const byId = (id) => document.getElementById(id);

/**
 * A new element: `attrs` are properties (`className`, `type`, …) except `data`
 * (dataset entries) and `on` (event listeners); `children` are nodes or strings
 * (strings become text nodes, never markup).
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'data') Object.assign(node.dataset, value);
    else if (key === 'on') for (const [event, fn] of Object.entries(value)) node.addEventListener(event, fn);
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

/** Removes every child of `node`. */
export function clear(node) {
  node.replaceChildren();
}

/** Shows `message` in the error bar (or hides it when empty). */
export function showError(message) {
  const bar = byId('error');
  bar.textContent = message || '';
  bar.hidden = !message;
}

/** `HH:MM` of an RFC 3339 timestamp, or the date too when not today. */
export function when(ts) {
  const date = new Date(ts);
  const time = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  return date.toDateString() === new Date().toDateString()
    ? time : `${date.toLocaleDateString()} ${time}`;
}
