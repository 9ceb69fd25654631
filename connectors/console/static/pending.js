// The pending transaction: every edit made in the console collects here as a
// change of the proxy's own vocabulary (put_cluster, delete_backend, …). Review
// asks the proxy for a dry run and shows its diff; Apply sends the same changes
// with the generation that was reviewed, so a change made meanwhile by anyone
// else is refused by the proxy and shown here, never overwritten.

import { ApiError, api } from './api.js';
import { h, replace, table } from './dom.js';

const listeners = new Set();

export const pending = {
  changes: [],
  /** The dry run the Apply button would apply: {generation, diff, count}. */
  reviewed: undefined,
  /** Issues the proxy returned for the last review or apply, by path. */
  issues: [],
  conflict: undefined,
  add(change) {
    this.changes.push(change);
    this.touched();
  },
  remove(i) {
    this.changes.splice(i, 1);
    this.touched();
  },
  clear() {
    this.changes = [];
    this.issues = [];
    this.conflict = undefined;
    this.touched();
  },
  touched() {
    this.reviewed = undefined;
    for (const l of listeners) l();
  },
  onChange(fn) {
    listeners.add(fn);
    return () => listeners.delete(fn);
  },
};

/** A one-line name of what a change does. */
export function summary(c) {
  switch (c.op) {
    case 'put_listener':
      return `put listener ${c.listener.address} (${c.listener.protocol ?? 'http'})`;
    case 'delete_listener':
      return `delete listener ${c.address}`;
    case 'put_cluster':
      return `put cluster ${c.cluster.id}`;
    case 'delete_cluster':
      return `delete cluster ${c.id}`;
    case 'put_backend':
      return `put backend ${c.backend.cluster}/${c.backend.id} at ${c.backend.address}`;
    case 'delete_backend':
      return `delete backend ${c.cluster}/${c.id}`;
    case 'put_frontend':
      return `put frontend ${c.frontend.hostname}${c.frontend.path ?? '/'} to ${c.frontend.cluster ?? 'deny'}`;
    case 'delete_frontend':
      return `delete frontend ${c.frontend.hostname}${c.frontend.path ?? '/'}`;
    case 'put_certificate':
      return `put certificate on ${c.certificate.listener}`;
    case 'delete_certificate':
      return `delete certificate ${c.fingerprint.slice(0, 16)}… on ${c.listener}`;
    default:
      return c.op;
  }
}

function leaves(value, prefix, out) {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) leaves(v, prefix ? `${prefix}.${k}` : k, out);
  } else out.push([prefix, value]);
  return out;
}

function shown(path, value) {
  // The key went to the proxy once; it is never shown again, here either.
  if (path.endsWith('certificate.key')) return '(private key, not shown)';
  if (typeof value === 'string' && value.startsWith('-----BEGIN')) {
    return `${value.split('\n')[0]} … (${value.split('\n').length} lines)`;
  }
  return JSON.stringify(value);
}

function changeItem(c, i, issues, editable) {
  const mine = issues.filter((x) => x.path === `changes[${i}]` || x.path.startsWith(`changes[${i}].`));
  const used = new Set();
  const rows = leaves(c, '', [])
    .filter(([p]) => p !== 'op')
    .map(([p, v]) => {
      const issue = mine.find((x) => x.path === `changes[${i}].${p}`);
      if (issue) used.add(issue);
      return h(
        'div',
        { class: issue ? 'kv invalid' : 'kv' },
        h('dt', {}, p),
        h(
          'dd',
          {},
          shown(p, v),
          issue ? h('span', { class: 'issue', role: 'alert' }, ` ${issue.reason}`) : null,
        ),
      );
    });
  const other = mine.filter((x) => !used.has(x));
  return h(
    'li',
    { class: 'change' },
    h('span', { class: 'summary' }, summary(c)),
    editable
      ? h(
          'button',
          { type: 'button', class: 'link', onclick: () => pending.remove(i) },
          'remove from transaction',
        )
      : null,
    other.map((x) => h('p', { class: 'issue', role: 'alert' }, `${x.path}: ${x.reason}`)),
    h('dl', {}, rows),
  );
}

/** What the live event stream saw applied after the reviewed generation: who changed what. */
function meanwhile(events, generation) {
  const later = events.filter((e) => e.event.type === 'change_applied' && e.event.generation > generation);
  if (later.length === 0) return null;
  return h(
    'ul',
    { class: 'meanwhile' },
    later.map((e) =>
      h(
        'li',
        {},
        `generation ${e.event.generation} by ${e.event.source}: ${e.event.applied.map((a) => `${a.effect} ${a.key}`).join(', ')}`,
      ),
    ),
  );
}

function diffTable(diff) {
  return table(
    'What the proxy will do (dry run)',
    ['object', 'change', 'effect', 'held by now'],
    diff.map((d) => ({
      className: `effect-${d.effect}`,
      cells: [d.key, d.op, d.effect, d.held_by ?? '(new)'],
    })),
  );
}

/** The Changes page: the pending list, Review, Apply, import and export. */
export function changesPage(ctx) {
  const editor = ctx.role === 'editor';
  const list = h('div', {});
  const result = h('div', { id: 'review-result', 'aria-live': 'polite' });
  const reviewBtn = h('button', { type: 'button', id: 'review', onclick: () => review() }, 'Review');
  const applyBtn = h(
    'button',
    { type: 'button', id: 'apply', class: 'primary', onclick: () => apply() },
    'Apply',
  );
  const discardBtn = h('button', { type: 'button', onclick: () => pending.clear() }, 'Discard all');

  let eventsShown = 0;
  function render() {
    eventsShown = ctx.events.length;
    const n = pending.changes.length;
    applyBtn.disabled = !editor || pending.reviewed === undefined;
    reviewBtn.disabled = n === 0;
    discardBtn.disabled = n === 0;
    replace(
      list,
      n === 0
        ? h(
            'p',
            { class: 'empty' },
            'No pending changes. Add, edit or remove objects on the other pages; they collect here.',
          )
        : h(
            'ol',
            { class: 'changes' },
            pending.changes.map((c, i) => changeItem(c, i, pending.issues, editor)),
          ),
    );
    const parts = [];
    if (pending.conflict) parts.push(conflictBox(pending.conflict));
    if (pending.reviewed) {
      parts.push(
        h(
          'p',
          {},
          `Reviewed against generation ${pending.reviewed.generation}. Apply sends it with expect_generation ${pending.reviewed.generation}.`,
        ),
        diffTable(pending.reviewed.diff),
      );
    }
    replace(result, parts);
  }

  // Rebuilt at every render, so changes the event stream reports after the refusal show too.
  function conflictBox(c) {
    return h(
      'div',
      { class: 'conflict', role: 'alert' },
      h(
        'p',
        {},
        `Someone else changed the proxy since your review at generation ${c.generation}: nothing was applied. ${c.message}`,
      ),
      meanwhile(ctx.events, c.generation),
      h('p', {}, 'Your changes are still pending. Review them again against the current state, then apply.'),
      h(
        'button',
        { type: 'button', id: 'rebase', onclick: () => review() },
        'Review again against the current state',
      ),
    );
  }

  async function review() {
    pending.conflict = undefined;
    try {
      const r = await api.transaction({ changes: pending.changes, dry_run: true });
      pending.issues = [];
      pending.reviewed = { generation: r.generation, diff: r.diff };
      render();
      ctx.toast(`Dry run: ${r.diff.length} object(s) at generation ${r.generation}`);
    } catch (err) {
      pending.reviewed = undefined;
      refused(err);
    }
  }

  async function apply() {
    const reviewed = pending.reviewed;
    if (!reviewed) return;
    try {
      const r = await api.transaction({ changes: pending.changes, expect_generation: reviewed.generation });
      const count = pending.changes.length;
      pending.clear();
      replace(
        result,
        h(
          'p',
          { class: 'ok', role: 'status' },
          `Applied ${count} change(s): generation ${r.generation}, live on every worker in ${r.live_ms} ms.`,
        ),
      );
      ctx.applied();
    } catch (err) {
      if (err instanceof ApiError && err.code === 'KKH_GENERATION_MISMATCH') {
        pending.reviewed = undefined;
        pending.conflict = { generation: reviewed.generation, message: err.message };
        render();
        return;
      }
      refused(err);
    }
  }

  function refused(err) {
    pending.issues = err.issues ?? [];
    render();
    result.prepend(h('p', { class: 'issue', role: 'alert' }, `${err.code ?? 'error'}: ${err.message}`));
  }

  const importText = h('textarea', { id: 'import-text', rows: 6, spellcheck: 'false' });
  const importFile = h('input', {
    id: 'import-file',
    type: 'file',
    accept: '.json,application/json',
    onchange: async () => {
      const f = importFile.files?.[0];
      if (f) importText.value = await f.text();
    },
  });
  function importChanges() {
    let doc;
    try {
      doc = JSON.parse(importText.value);
    } catch (err) {
      ctx.toast(`The changes file is not JSON: ${err.message}`);
      return;
    }
    const changes = Array.isArray(doc) ? doc : doc?.changes;
    if (!Array.isArray(changes)) {
      ctx.toast('Expected a changes file: {"changes": [...]}');
      return;
    }
    for (const c of changes) pending.add(c);
    importText.value = '';
    ctx.toast(`${changes.length} change(s) added; Review shows the dry run before anything applies.`);
  }
  async function exportChanges() {
    const doc = await api.exportChanges();
    const blob = new Blob([`${JSON.stringify({ changes: doc.changes }, null, 2)}\n`], {
      type: 'application/json',
    });
    const a = h('a', { href: URL.createObjectURL(blob), download: `kakehi-changes-g${doc.generation}.json` });
    document.body.append(a);
    a.click();
    a.remove();
  }

  const off = pending.onChange(render);
  render();
  return {
    node: h(
      'section',
      {},
      h('h1', {}, 'Pending changes'),
      editor ? null : h('p', { class: 'note' }, 'Read-only session: you can review, not apply.'),
      list,
      h('div', { class: 'actions' }, reviewBtn, editor ? applyBtn : null, discardBtn),
      result,
      h('h2', {}, 'Export and import'),
      h(
        'p',
        {},
        h('button', { type: 'button', onclick: exportChanges }, 'Export current state as a changes file'),
        ' (certificate keys read "<redacted>") ',
        h(
          'a',
          {
            href: '/api/export?format=config',
            download: 'kakehi.yaml',
            id: 'export-config',
            class: 'button',
          },
          'Export as a configuration file',
        ),
        ' (objects only; certificates listed in comments)',
      ),
      editor
        ? h(
            'div',
            { class: 'import' },
            h(
              'div',
              { class: 'field' },
              h('label', { for: 'import-text' }, 'Changes file to import (JSON)'),
              importText,
            ),
            h(
              'div',
              { class: 'field' },
              h('label', { for: 'import-file' }, 'or read it from a file'),
              importFile,
            ),
            h(
              'button',
              { type: 'button', id: 'import-add', onclick: importChanges },
              'Add to the transaction',
            ),
          )
        : null,
    ),
    // Only when an event arrived: a render moves keyboard focus off the buttons.
    refresh: async () => {
      if (pending.conflict && ctx.events.length !== eventsShown) render();
    },
    dispose: off,
  };
}
