// Building the page with DOM calls only: text always goes in as text nodes, so
// nothing the proxy or a user sends can become markup (and the CSP forbids inline
// script anyway).

/** An element: h('button', {class: 'x', onclick: fn}, 'text', child). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElementNS(
    tag === 'svg' || tag === 'polyline' ? 'http://www.w3.org/2000/svg' : 'http://www.w3.org/1999/xhtml',
    tag,
  );
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' && 'value' in el) el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** A table with a header row; rows are arrays of cells (text or nodes). */
export function table(caption, headers, rows) {
  return h(
    'table',
    {},
    h('caption', {}, caption),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        headers.map((t) => h('th', { scope: 'col' }, t)),
      ),
    ),
    h(
      'tbody',
      {},
      rows.length === 0
        ? h('tr', {}, h('td', { colspan: headers.length, class: 'empty' }, 'none'))
        : rows.map((r) =>
            h(
              'tr',
              { class: r.className },
              r.cells.map((c) => h('td', {}, c ?? '-')),
            ),
          ),
    ),
  );
}

let fieldSeq = 0;
/** A labelled input; `name` is the change field it fills. */
export function field(label, name, attrs = {}) {
  const id = `f${++fieldSeq}`;
  const input =
    attrs.options !== undefined
      ? h(
          'select',
          { id, name },
          attrs.options.map((o) =>
            h('option', { value: o, selected: o === attrs.value }, o === '' ? '(none)' : o),
          ),
        )
      : attrs.multiline
        ? h('textarea', { id, name, rows: 6, spellcheck: 'false', required: attrs.required })
        : h('input', {
            id,
            name,
            type: attrs.type ?? 'text',
            required: attrs.required,
            placeholder: attrs.placeholder,
            value: attrs.value,
            autocomplete: 'off',
          });
  return h('div', { class: 'field' }, h('label', { for: id }, label), input);
}

/** The form's fields by name: trimmed strings, checkboxes as booleans. */
export function formValues(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    out[el.name] = el.type === 'checkbox' ? el.checked : el.value.trim();
  }
  return out;
}

export function replace(container, ...children) {
  container.replaceChildren(...children.flat().filter((c) => c !== undefined && c !== null && c !== false));
}

export function bytes(n) {
  if (n === null || n === undefined) return '-';
  return n >= 1048576 ? `${(n / 1048576).toFixed(1)} MiB` : `${Math.round(n / 1024)} KiB`;
}

export function duration(s) {
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

/** A small line chart of the last values, as SVG. */
export function sparkline(values, label) {
  const w = 160;
  const ht = 32;
  const max = Math.max(1, ...values);
  const step = values.length > 1 ? w / (values.length - 1) : w;
  const points = values.map(
    (v, i) => `${(i * step).toFixed(1)},${(ht - (v / max) * (ht - 2) - 1).toFixed(1)}`,
  );
  return h(
    'svg',
    { class: 'spark', viewBox: `0 0 ${w} ${ht}`, width: w, height: ht, role: 'img', 'aria-label': label },
    h('polyline', { points: points.join(' '), fill: 'none', stroke: 'currentColor', 'stroke-width': 1.5 }),
  );
}
