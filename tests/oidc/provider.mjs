// A real, OpenID Certified provider (node-oidc-provider 9.x) on 127.0.0.1 for Gatehouse's approver
// sign-in tests. Plain http on loopback: the issuer is http://127.0.0.1:PORT, and its cookies are
// not `Secure` (oidc-provider marks them so only on https requests).
//
//   node provider.mjs [PORT]      (or OIDC_PORT; default 0 = a free port)
//
// Environment (all optional):
//   OIDC_PORT             port (the first argument wins)
//   OIDC_CLIENT_ID        the one static client's id           (default gatehouse)
//   OIDC_CLIENT_SECRET    its secret                           (default gatehouse-test-secret)
//   OIDC_REDIRECT_URIS    its redirect URIs, comma-separated   (default http://127.0.0.1:8080/v1/auth/callback)
//   OIDC_TOKEN_AUTH_METHOD client_secret_basic (default) or client_secret_post
//   OIDC_LOOPBACK_ANY_PORT 1 (default): a registered http://127.0.0.1:PORT/path redirect URI
//                         matches any port (the client is `native`, RFC 8252 §7.3), so the
//                         relying party may listen on a free port; 0: exact match only
//   OIDC_USERS            accounts, comma-separated email:password
//                         (default approver@demo.invalid:demo,second@demo.invalid:demo)
//   OIDC_CONSENT_FORM=1   show a consent form (default: consent is granted without a page)
//
// Prints `OIDC_ISSUER=http://127.0.0.1:PORT` on stdout once listening. The client uses the code
// flow with PKCE (required, S256) and scopes `openid email`; ID tokens are RS256 and carry `email`,
// `email_verified` (true), `amr` (["pwd"]), `auth_time` and the `nonce`.
//
// Interactions (what a non-browser client drives with plain form posts, keeping the cookies):
//   GET  /auth?...                  -> 303 /interaction/{uid}
//   GET  /interaction/{uid}         -> the login form (fields `login`, `password`)
//   POST /interaction/{uid}/login   -> 303 /auth/{uid} -> (consent) -> 303 redirect_uri?code=&state=&iss=
//                                      a wrong password shows the form again (200, class "error")
//   POST /interaction/{uid}/confirm -> the consent form's button (with OIDC_CONSENT_FORM=1)
//   GET  /interaction/{uid}/abort   -> 303 redirect_uri?error=access_denied

import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import Provider, { errors } from 'oidc-provider';

const port = Number(process.argv[2] ?? process.env.OIDC_PORT ?? 0);
const clientId = process.env.OIDC_CLIENT_ID || 'gatehouse';
const clientSecret = process.env.OIDC_CLIENT_SECRET || 'gatehouse-test-secret';
const redirectUris = (process.env.OIDC_REDIRECT_URIS || 'http://127.0.0.1:8080/v1/auth/callback')
  .split(',').map((s) => s.trim()).filter(Boolean);
const tokenAuthMethod = process.env.OIDC_TOKEN_AUTH_METHOD || 'client_secret_basic';
const consentForm = process.env.OIDC_CONSENT_FORM === '1';
const loopbackAnyPort = (process.env.OIDC_LOOPBACK_ANY_PORT ?? '1') !== '0';

// The same test users as the simulator (sim/oidc); `sub` is stable per email.
const accounts = new Map();
for (const entry of (process.env.OIDC_USERS || 'approver@demo.invalid:demo,second@demo.invalid:demo').split(',')) {
  const at = entry.indexOf(':');
  if (at < 1) throw new Error(`OIDC_USERS: "${entry}" is not email:password`);
  const email = entry.slice(0, at).trim();
  const sub = `u-${createHash('sha256').update(`oidc-sim:${email.toLowerCase()}`).digest('hex').slice(0, 24)}`;
  accounts.set(email.toLowerCase(), { email, password: entry.slice(at + 1), sub });
}
const bySub = new Map([...accounts.values()].map((a) => [a.sub, a]));

// A fresh RS256 signing key per start (Node's own crypto, no dependency).
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: randomBytes(8).toString('hex') };

const server = createServer();
await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: redirectUris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: tokenAuthMethod,
    application_type: loopbackAnyPort ? 'native' : 'web',
  }],
  responseTypes: ['code'],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  pkce: { required: () => true },
  scopes: ['openid', 'email'],
  // amr and auth_time ride on the openid scope, so every ID token carries them (as the simulator's do).
  claims: { acr: null, sid: null, iss: null, openid: ['sub', 'amr', 'auth_time'], email: ['email', 'email_verified'] },
  // Put the email claims in the ID token too (not only at /userinfo), as the big providers do.
  conformIdTokenClaims: false,
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    const account = bySub.get(sub);
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, email: account.email, email_verified: true };
      },
    };
  },
  // Without OIDC_CONSENT_FORM the client is first-party: grant what it asks without a page.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    if (consentForm) return undefined;
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid email');
    grant.addOIDCClaims(['email', 'email_verified']);
    await grant.save();
    return grant;
  },
  renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('Error', `<p class="error">${escape(out.error)}: ${escape(out.error_description ?? '')}</p>`);
  },
});

function escape(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function page(title, body) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escape(title)}</title></head>`
    + `<body><h1>${escape(title)}</h1>${body}</body></html>`;
}

function loginForm(uid, login = '', error = '') {
  return page('Sign in', `${error ? `<p class="error">${escape(error)}</p>` : ''}`
    + `<form method="post" action="/interaction/${uid}/login">`
    + `<label>Email <input type="email" name="login" value="${escape(login)}" required></label>`
    + '<label>Password <input type="password" name="password" required></label>'
    + '<button type="submit">Sign in</button></form>'
    + `<p><a href="/interaction/${uid}/abort">Cancel</a></p>`);
}

function consentPage(uid, details) {
  const scopes = [...(details.missingOIDCScope ?? [])].join(' ');
  return page('Allow access', `<p>Allow ${escape(clientId)} to read: ${escape(scopes)}</p>`
    + `<form method="post" action="/interaction/${uid}/confirm"><button type="submit">Allow</button></form>`);
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, html) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new errors.SessionNotFound('interaction mismatch');
  const { prompt } = details;

  if (req.method === 'GET' && !action) {
    return send(res, 200, prompt.name === 'login' ? loginForm(uid) : consentPage(uid, prompt.details));
  }
  if (req.method === 'GET' && action === 'abort') {
    return provider.interactionFinished(req, res, { error: 'access_denied', error_description: 'the user cancelled the sign-in' }, { mergeWithLastSubmission: false });
  }
  if (req.method === 'POST' && action === 'login' && prompt.name === 'login') {
    const form = await readForm(req);
    const login = (form.get('login') ?? '').trim();
    const account = accounts.get(login.toLowerCase());
    if (!account || account.password !== form.get('password')) {
      return send(res, 200, loginForm(uid, login, 'Wrong email or password.'));
    }
    return provider.interactionFinished(req, res, { login: { accountId: account.sub, amr: ['pwd'], remember: false } }, { mergeWithLastSubmission: false });
  }
  if (req.method === 'POST' && action === 'confirm' && prompt.name === 'consent') {
    await readForm(req);
    const { details: missing } = prompt;
    let grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
    if (!grant) grant = new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  return send(res, 400, page('Error', `<p class="error">unexpected ${escape(req.method)} ${escape(action ?? '')} at the ${escape(prompt.name)} prompt</p>`));
}

const callback = provider.callback();
server.on('request', async (req, res) => {
  const match = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm|abort))?\/?(?:\?.*)?$/.exec(req.url);
  if (!match) return callback(req, res);
  try {
    await interaction(req, res, match[1], match[2]);
  } catch (err) {
    if (!res.headersSent) send(res, 400, page('Error', `<p class="error">${escape(err.name)}: ${escape(err.message)}</p>`));
  }
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdout.write(`OIDC_ISSUER=${issuer}\n`);
