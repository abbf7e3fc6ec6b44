// REST calls: JSON in, JSON out, and every failure turned into an ApiError whose
// message can be shown to a person as it is.

/** A failed request: `status` 0 means the server could not be reached. */
export class ApiError extends Error {
  constructor(status, message, retryAfter = null) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

/** `method path` with an optional JSON `body` and bearer `token`; resolves to the JSON answer (null for 204). */
export async function call(method, path, { body, token } = {}) {
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'The server is unreachable. Is it running? Try again in a moment.');
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (res.ok) return data;
  if (res.status === 429) {
    const retryAfter = Number(res.headers.get('retry-after')) || 1;
    throw new ApiError(429, `Too many requests: try again in ${retryAfter} s.`, retryAfter);
  }
  const message = (data && typeof data.error === 'string' && data.error)
    || text.trim() || `${res.status} ${res.statusText}`;
  throw new ApiError(res.status, message);
}
