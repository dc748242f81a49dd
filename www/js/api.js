// The management API, as the browser calls it: HTTP basic credentials kept in this tab's
// session storage (gone when the tab closes) and sent with every call, as RabbitMQ's UI does.
// Paths are relative to the page, so the UI also works behind a proxy that mounts it below a
// prefix.

const CREDENTIALS = 'warren.credentials';

export class ApiError extends Error {
    constructor(status, error, reason) {
        super(reason || error || `HTTP ${status}`);
        this.status = status;
        this.error = error;
        this.reason = reason;
    }
}

// "user:password" as base64 of its UTF-8 bytes (btoa alone takes only Latin-1).
function basic(user, password) {
    const bytes = new TextEncoder().encode(`${user}:${password}`);
    let binary = '';
    for (const b of bytes) binary += String.fromCharCode(b);
    return btoa(binary);
}

export function setCredentials(user, password) {
    sessionStorage.setItem(CREDENTIALS, basic(user, password));
}

export function clearCredentials() {
    sessionStorage.removeItem(CREDENTIALS);
}

export function hasCredentials() {
    return sessionStorage.getItem(CREDENTIALS) !== null;
}

// A path whose interpolated parts are percent-encoded, '/' included: the vhost "/" is "%2F".
//   path`/queues/${vhost}/${name}`
export function path(strings, ...values) {
    let out = strings[0];
    values.forEach((v, i) => {
        out += encodeURIComponent(String(v)) + strings[i + 1];
    });
    return out;
}

// Query string of the defined, non-empty values of params.
export function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params))
        if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
    const s = q.toString();
    return s ? `?${s}` : '';
}

// Calls the API; resolves to the parsed JSON (null for an empty answer) or rejects with an
// ApiError carrying the API's error and reason. A refused login also tells the listeners of
// 'warren:unauthorised' (the app returns to the login page when the credentials stop working).
export async function api(method, apiPath, body, headers = {}) {
    const init = {
        method,
        // 'omit': the browser adds no credentials of its own and, seeing a 401, shows no
        // login dialog of its own; ours are in the header.
        credentials: 'omit',
        cache: 'no-store',
        headers: { ...headers },
    };
    const auth = sessionStorage.getItem(CREDENTIALS);
    if (auth !== null) init.headers.Authorization = `Basic ${auth}`;
    if (body !== undefined) {
        init.headers['Content-Type'] = 'application/json';
        init.body = typeof body === 'string' ? body : JSON.stringify(body);
    }
    const r = await fetch(`api${apiPath}`, init);
    const text = await r.text();
    let json = null;
    if (text !== '') {
        try {
            json = JSON.parse(text);
        } catch {
            json = null;
        }
    }
    if (!r.ok) {
        const e = new ApiError(r.status, json?.error, typeof json?.reason === 'string'
            ? json.reason : json?.reason !== undefined ? JSON.stringify(json.reason) : r.statusText);
        // A refused login (not a refused operation, also 401 in RabbitMQ's API): wrong
        // password, or the user was deleted or lost its management tag meanwhile.
        const loginRefused = r.status === 401 && (json === null || json.error === 'not_authorized'
            || json.reason === 'Not management user');
        if (loginRefused) window.dispatchEvent(new CustomEvent('warren:unauthorised', { detail: e }));
        throw e;
    }
    return json;
}

export const get = (p) => api('GET', p);
export const put = (p, body) => api('PUT', p, body ?? {});
export const post = (p, body) => api('POST', p, body ?? {});
export const del = (p, headers) => api('DELETE', p, undefined, headers);
