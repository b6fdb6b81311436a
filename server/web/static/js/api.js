// The REST API, as any client would use it. The token lives in sessionStorage: this tab only,
// never in a URL or a cookie, so no other site can read it or send it.

const TOKEN = "seda.token";
const USER = "seda.user";

export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "internal";
    this.details = error.details || {};
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN);
}

export function currentUser() {
  const raw = sessionStorage.getItem(USER);
  return raw ? JSON.parse(raw) : null;
}

export function signOut() {
  sessionStorage.removeItem(TOKEN);
  sessionStorage.removeItem(USER);
}

function remember(body) {
  sessionStorage.setItem(TOKEN, body.access_token);
  sessionStorage.setItem(USER, JSON.stringify(body.user));
  return body.user;
}

/** api("GET", "/api/v1/me"), api("POST", path, body); resolves to the JSON body (null for 204). */
export async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  const t = token();
  if (t) headers.Authorization = `Bearer ${t}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body);

export async function signUp(email, username, password) {
  return remember(await post("/api/v1/auth/register", { email, username, password }));
}

export async function signIn(login, password) {
  const body = login.includes("@") ? { email: login, password } : { username: login, password };
  return remember(await post("/api/v1/auth/login", body));
}

/** "a=1&b=2" from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : "";
}
