// Forms: labelled fields, a submit button, and the outcome shown next to the button.

import { errorText, flash, h } from './dom.js';
import { get } from './api.js';

let fieldSeq = 0;

// One field: {name, label, type: text|password|number|select|checkbox|textarea|file,
// options: [[value, label]] or [value], value, placeholder, required, help}.
function field(f) {
    const id = `f${++fieldSeq}-${f.name}`;
    let input;
    if (f.type === 'select') {
        input = h('select', { id, name: f.name }, (f.options ?? []).map((o) => {
            const [value, label] = Array.isArray(o) ? o : [o, o];
            return h('option', { value, selected: value === f.value }, label);
        }));
    } else if (f.type === 'textarea') {
        input = h('textarea', { id, name: f.name, rows: f.rows ?? 3, placeholder: f.placeholder, required: f.required });
        input.value = f.value ?? '';
    } else if (f.type === 'checkbox') {
        input = h('input', { id, name: f.name, type: 'checkbox', checked: !!f.value });
    } else {
        input = h('input', {
            id, name: f.name, type: f.type ?? 'text', placeholder: f.placeholder, required: f.required,
            autocomplete: f.autocomplete ?? 'off', min: f.min, accept: f.accept,
        });
        if (f.value !== undefined && f.type !== 'file') input.value = f.value;
    }
    return h('div', { class: `field field-${f.type ?? 'text'}` },
        h('label', { for: id }, f.label),
        input,
        f.help ? h('small', { class: 'help' }, f.help) : null);
}

// A form whose onSubmit(values, form) resolves to a message (or nothing) or throws an
// error, shown beside the button. values: name -> string, boolean (checkbox) or File.
export function form({ title, fields, submit, onSubmit, id, resetOnSuccess = true }) {
    const msg = h('span', { class: 'form-msg', role: 'status' });
    const button = h('button', { type: 'submit' }, submit);
    const el = h('form', { class: 'form', id },
        title ? h('h3', {}, title) : null,
        fields.map(field),
        h('div', { class: 'form-actions' }, button, msg));
    el.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const values = {};
        for (const f of fields) {
            const input = el.elements[f.name];
            values[f.name] = f.type === 'checkbox' ? input.checked : f.type === 'file' ? input.files[0] : input.value;
        }
        button.disabled = true;
        msg.className = 'form-msg';
        msg.textContent = '…';
        try {
            const done = await onSubmit(values, el);
            msg.className = 'form-msg ok';
            msg.textContent = done ?? 'Done.';
            if (resetOnSuccess) {
                for (const f of fields) if (f.type === 'password' || f.type === 'file') el.elements[f.name].value = '';
            }
        } catch (e) {
            msg.className = 'form-msg error';
            msg.textContent = errorText(e);
        } finally {
            button.disabled = false;
        }
    });
    return el;
}

// "key = value" lines (or a JSON object) as an object; values that read as JSON (numbers,
// true, false, quoted strings, arrays, objects) are taken as such, the rest as strings.
export function parseTable(text) {
    const t = (text ?? '').trim();
    if (t === '') return {};
    if (t.startsWith('{')) {
        const o = JSON.parse(t);
        if (typeof o !== 'object' || Array.isArray(o)) throw new Error('expected a JSON object');
        return o;
    }
    const out = {};
    for (const line of t.split('\n')) {
        if (line.trim() === '') continue;
        const eq = line.indexOf('=');
        if (eq < 1) throw new Error(`not "key = value": ${line}`);
        const key = line.slice(0, eq).trim();
        const raw = line.slice(eq + 1).trim();
        let value = raw;
        try {
            value = JSON.parse(raw);
        } catch {
            value = raw;
        }
        out[key] = value;
    }
    return out;
}

// The names of the vhosts the user may see, for a select.
export async function vhostNames() {
    const vhosts = await get('/vhosts');
    return vhosts.map((v) => v.name).sort();
}

// A button that asks before it acts; onConfirm's error or message goes to flash().
export function actionButton(label, question, onConfirm, cls = 'danger') {
    return h('button', {
        type: 'button', class: cls,
        onclick: async () => {
            if (question && !window.confirm(question)) return;
            try {
                const m = await onConfirm();
                if (m) flash(m);
            } catch (e) {
                flash(errorText(e), 'error');
            }
        },
    }, label);
}

// A select of "All virtual hosts" and each vhost; onChange(vhost or '') on a choice.
export function vhostPicker(onChange) {
    const sel = h('select', { 'aria-label': 'Virtual host', class: 'vhost-picker', onchange: () => onChange(sel.value) },
        h('option', { value: '' }, 'All virtual hosts'));
    vhostNames().then((names) => sel.append(...names.map((n) => h('option', { value: n }, n)))).catch(() => {});
    return sel;
}
