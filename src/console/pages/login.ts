/**
 * The login form, answered with 401 to anyone without a session. It styles itself inline (allowed by the
 * style's hash in the CSP), since before login no asset is served.
 *
 * @module
 */
import { html, raw } from 'hono/html'
import { BASE, type Html } from './shell.js'

/** The login page's own style. A constant, inserted unescaped: `<style>` is raw text, where an entity would not be decoded. */
export const LOGIN_CSS = `body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f4f5f7;color:#1d2433;margin:0;display:grid;place-items:center;min-height:100vh}
main{background:#fff;border:1px solid #d9dde5;border-radius:10px;padding:2rem 2.25rem;width:min(26rem,90vw);box-shadow:0 2px 10px rgba(20,30,60,.06)}
h1{font-size:1.35rem;margin:0 0 .25rem}p{color:#4a5568;margin:.25rem 0 1.25rem}label{display:block;font-weight:600;margin-bottom:.35rem}
input{width:100%;box-sizing:border-box;font:14px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;padding:.6rem .7rem;border:1px solid #aab2c0;border-radius:6px}
input:focus,button:focus{outline:3px solid #8ab4f8;outline-offset:1px}
button{margin-top:1rem;width:100%;padding:.65rem;border:0;border-radius:6px;background:#1f4fd1;color:#fff;font-weight:600;font-size:15px;cursor:pointer}
button:hover{background:#173fa8}.error{background:#fdecec;color:#8a1c1c;border:1px solid #f3b7b7;padding:.55rem .75rem;border-radius:6px}
.brand{color:#1f4fd1;font-weight:700;letter-spacing:.01em}`

/** The login form, with the reason the last attempt failed (and its stable code), if any. */
export function loginPage(error?: string, code?: string): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Log in · pg-authorize console</title>
<style>${raw(LOGIN_CSS)}</style>
</head>
<body>
<main>
<div class="brand">pg-authorize</div>
<h1>Console</h1>
<p>Enter the admin token printed when the gateway started (or set in its configuration).</p>
${error ? html`<p class="error" role="alert"${code ? html` data-code="${code}"` : ''}>${error}</p>` : ''}
<form method="post" action="${BASE}/login">
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Log in</button>
</form>
</main>
</body>
</html>`
}
