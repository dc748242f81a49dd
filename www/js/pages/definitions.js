// Definitions: the broker's users, vhosts, permissions, policies, exchanges, queues and
// bindings as RabbitMQ's JSON, exported as a file and imported from one.

import { get, post } from '../api.js';
import { h, section } from '../dom.js';
import { form } from '../forms.js';

export async function render(page) {
    page.append(h('h1', {}, 'Definitions'),
        section('Export definitions', form({
            id: 'export-definitions', submit: 'Download broker definitions', resetOnSuccess: false,
            fields: [],
            onSubmit: async () => {
                const defs = await get('/definitions');
                const blob = new Blob([JSON.stringify(defs, null, 2)], { type: 'application/json' });
                const a = h('a', { href: URL.createObjectURL(blob), download: `warren-definitions-${new Date().toISOString().slice(0, 10)}.json` });
                document.body.append(a);
                a.click();
                a.remove();
                setTimeout(() => URL.revokeObjectURL(a.href), 10000);
                return `Exported ${(defs.queues ?? []).length} queues, ${(defs.exchanges ?? []).length} exchanges, ${(defs.bindings ?? []).length} bindings.`;
            },
        })),
        section('Import definitions', form({
            id: 'import-definitions', submit: 'Upload broker definitions',
            fields: [{ name: 'file', label: 'Definitions file', type: 'file', accept: '.json,application/json', help: 'RabbitMQ\'s definitions JSON, as exported here or by RabbitMQ.' }],
            onSubmit: async ({ file }) => {
                if (!file) throw new Error('Choose a file first.');
                const text = await file.text();
                try {
                    JSON.parse(text);
                } catch (e) {
                    throw new Error(`${file.name} is not JSON: ${e.message}`);
                }
                await post('/definitions', text);
                return `Imported ${file.name}.`;
            },
        })));
    return null;
}
