// Credentials for this browser tab only: sessionStorage, never localStorage, cookies or the server.
// Closing the tab forgets them; the secret is read once to import a non-extractable signing key.

const KEY = "tradewire.apiKey";
const SECRET = "tradewire.apiSecret";

export function loadCredentials() {
  try {
    const apiKey = sessionStorage.getItem(KEY);
    const secret = sessionStorage.getItem(SECRET);
    return apiKey && secret ? { apiKey, secret } : null;
  } catch {
    return null;
  }
}

export function saveCredentials(apiKey, secret) {
  sessionStorage.setItem(KEY, apiKey);
  sessionStorage.setItem(SECRET, secret);
}

export function clearCredentials() {
  sessionStorage.removeItem(KEY);
  sessionStorage.removeItem(SECRET);
}
