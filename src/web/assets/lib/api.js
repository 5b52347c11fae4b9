// The one way pages talk to the server: JSON in and out, errors as `ApiError` with the API's message.

export class ApiError extends Error {
  constructor(status, body) {
    const first = body?.errors?.[0] ?? (body?.message ? { message: body.message } : undefined);
    super(first?.message ?? `The server answered ${status}`);
    this.name = 'ApiError';
    this.status = status;
    this.type = first?.type;
    this.param = first?.param;
    this.errorId = first?.details?.errorId;
  }
}

/**
 * `createClient({ authorization, onUnauthorized })` → `request(method, path, body?, headers?)`.
 * The Dashboard relies on its HttpOnly session cookie (sent automatically, same origin only); the hosted
 * page passes its link token as `authorization`.
 */
function parseJson(text) {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

export function createClient({ authorization, onUnauthorized } = {}) {
  return async function request(method, path, body, headers = {}) {
    const init = { method, credentials: 'same-origin', cache: 'no-store', headers: { accept: 'application/json', ...headers } };
    if (authorization) init.headers.authorization = authorization;
    if (body !== undefined) {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch {
      throw new ApiError(0, { message: 'Cannot reach the server. Check your connection and try again.' });
    }
    const data = parseJson(await response.text());
    if (!response.ok) {
      const error = new ApiError(response.status, data);
      if (response.status === 401 && onUnauthorized) onUnauthorized(error);
      throw error;
    }
    return data;
  };
}
