// The pieces every editing page shares: a form whose submit adds one change to
// the pending transaction (shown to editors only), and the edit and remove
// buttons of a table row. Nothing here changes the proxy by itself.

import { formValues, h } from './dom.js';
import { pending } from './pending.js';

export function editableForm(ctx, title, id, fields, toChange, note) {
  if (ctx.role !== 'editor') return null;
  const form = h(
    'form',
    {
      id,
      class: 'edit',
      onsubmit: (e) => {
        e.preventDefault();
        const change = toChange(formValues(form));
        if (change === undefined) return;
        pending.add(change);
        ctx.toast(`Added to the pending transaction: review it under Changes (${pending.changes.length}).`);
        form.reset();
      },
    },
    h('h2', {}, title),
    note ? h('p', { class: 'note' }, note) : null,
    h('div', { class: 'fields' }, fields),
    h('button', { type: 'submit' }, 'Add to transaction'),
  );
  return form;
}

/** Fills a form with an object's values, to edit it (a put by the same key replaces it). */
function fillForm(form, values) {
  for (const el of form.elements) {
    if (!el.name || !(el.name in values)) continue;
    if (el.type === 'checkbox') el.checked = values[el.name] === true;
    else el.value = values[el.name] ?? '';
  }
  form.querySelector('input,select')?.focus();
}

export function withoutStatus(o, extra = []) {
  const copy = { ...o };
  for (const k of ['source', 'key', 'port', ...extra]) delete copy[k];
  return copy;
}

export const removeButton = (ctx, label, change) =>
  ctx.role === 'editor'
    ? h(
        'button',
        {
          type: 'button',
          class: 'link',
          'aria-label': `remove ${label}`,
          onclick: () => {
            pending.add(change);
            ctx.toast(`Removal of ${label} added to the pending transaction.`);
          },
        },
        'remove',
      )
    : null;

export const editButton = (ctx, label, form, values) =>
  ctx.role === 'editor' && form
    ? h(
        'button',
        {
          type: 'button',
          class: 'link',
          'aria-label': `edit ${label}`,
          onclick: () => fillForm(form, values),
        },
        'edit',
      )
    : null;
