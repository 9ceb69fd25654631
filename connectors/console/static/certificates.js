// The certificates page: names, validity (expiring ones highlighted), source;
// the upload form puts a put_certificate in the pending transaction, and the key
// is never shown again.

import { api } from './api.js';
import { field, formValues, h, replace, table } from './dom.js';
import { removeButton } from './edit-forms.js';
import { pending } from './pending.js';

const EXPIRING_DAYS = 21;

export function certificatesPage(ctx) {
  const data = h('div', {});
  let form = null;
  if (ctx.role === 'editor') {
    const certText = h('textarea', {
      id: 'cert-pem',
      name: 'certificate',
      rows: 6,
      spellcheck: 'false',
      required: true,
    });
    const keyText = h('textarea', {
      id: 'key-pem',
      name: 'key',
      rows: 4,
      spellcheck: 'false',
      required: true,
      autocomplete: 'off',
    });
    const fileInto = (id, target, label) =>
      h('input', {
        id,
        type: 'file',
        'aria-label': label,
        accept: '.pem,.crt,.key',
        onchange: async (e) => {
          const f = e.target.files?.[0];
          if (f) target.value = await f.text();
        },
      });
    form = h(
      'form',
      {
        id: 'certificate-form',
        class: 'edit',
        onsubmit: (e) => {
          e.preventDefault();
          const v = formValues(form);
          pending.add({
            op: 'put_certificate',
            certificate: { listener: v.listener, certificate: v.certificate, key: v.key, default: v.default },
          });
          form.reset();
          ctx.toast(
            'Certificate added to the pending transaction; its key is sent once and never shown again.',
          );
        },
      },
      h('h2', {}, 'Upload a certificate'),
      h(
        'div',
        { class: 'fields' },
        field('HTTPS listener (host:port)', 'listener', { required: true }),
        h(
          'div',
          { class: 'field wide' },
          h('label', { for: 'cert-pem' }, 'Certificate (PEM, chain after the leaf)'),
          certText,
          fileInto('cert-file', certText, 'read the certificate from a file'),
        ),
        h(
          'div',
          { class: 'field wide' },
          h('label', { for: 'key-pem' }, 'Private key (PEM)'),
          keyText,
          fileInto('key-file', keyText, 'read the key from a file'),
        ),
        h(
          'div',
          { class: 'field' },
          h(
            'label',
            { for: 'cert-default' },
            h('input', { id: 'cert-default', name: 'default', type: 'checkbox' }),
            ' default certificate of the listener',
          ),
        ),
      ),
      h('button', { type: 'submit' }, 'Add to transaction'),
    );
  }
  return {
    node: h('section', {}, h('h1', {}, 'Certificates'), data, form),
    refresh: async () => {
      const r = await api.query('list_certificates');
      const now = Date.now();
      replace(
        data,
        table(
          'Certificates',
          ['names', 'listener', 'issuer', 'valid until', 'days left', 'source', 'default', ''],
          r.certificates.filter(Boolean).map((c) => {
            const days = Math.floor((Date.parse(c.not_after) - now) / 86_400_000);
            return {
              className: days < EXPIRING_DAYS ? 'expiring' : undefined,
              cells: [
                c.names.join(', '),
                c.listener,
                c.issuer,
                c.not_after,
                days < 0 ? 'expired' : String(days),
                c.source,
                c.default ? 'yes' : '',
                removeButton(ctx, `certificate ${c.names[0] ?? c.fingerprint}`, {
                  op: 'delete_certificate',
                  listener: c.listener,
                  fingerprint: c.fingerprint,
                }),
              ],
            };
          }),
        ),
      );
    },
  };
}
