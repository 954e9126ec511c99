// The embedded OpenID provider of `ttp up`: panva's oidc-provider (OpenID Certified), one account per
// sample party, over HTTPS with a certificate from the dev PKI. Only the sign-in form is ours: the
// library's own devInteractions accept any user name, which would be a login bypass.
//
// Usage: node provider.mjs <config.json>   (the config is written by services/portal/dev_idp.py)
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { timingSafeEqual } from 'node:crypto';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const accounts = new Map(config.accounts.map((a) => [a.username, a]));

const provider = new Provider(config.issuer, {
  clients: config.clients,
  jwks: config.jwks,
  cookies: { keys: config.cookieKeys },
  claims: { openid: ['sub'], profile: ['name'], organisation: ['oin', 'organisation'] },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false }, rpInitiatedLogout: { enabled: true, logoutSource } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  ttl: { Session: 3600, Interaction: 600, Grant: 3600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
  async findAccount(ctx, sub) {
    const account = config.accounts.find((a) => a.sub === sub);
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, name: account.name, oin: account.oin, organisation: account.organisation };
      },
    };
  },
  // The portal is the TTP's own client: its scopes need no consent screen of their own.
  async loadExistingGrant(ctx) {
    const { Grant } = ctx.oidc.provider;
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      const found = await Grant.find(grantId);
      if (found) return found;
    }
    const grant = new Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid profile organisation');
    await grant.save();
    return grant;
  },
});
provider.proxy = false;

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

function page(title, body) {
  return `<!doctype html><html lang="nl"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem;color:#1a1a1a}
label{display:block;margin-top:1rem;font-weight:600}input{font-size:1rem;padding:.5rem;width:100%;box-sizing:border-box;border:2px solid #555}
button{margin-top:1.5rem;font-size:1rem;padding:.6rem 1.2rem;background:#154273;color:#fff;border:0}
.error{color:#a50e0e;font-weight:600}</style></head><body><main>${body}</main></body></html>`;
}

async function logoutSource(ctx, form) {
  ctx.body = page('Uitloggen', `<h1>Uitloggen bij de inlogdienst</h1>
<p>U bent uitgelogd bij het portaal. Log ook uit bij de inlogdienst.</p>${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes">Uitloggen</button>`);
}

function loginForm(uid, error) {
  return page('Inloggen', `<h1>Inloggen (ontwikkelomgeving)</h1>
<p>Inlogdienst van de lokale Outcome TTP. Gebruik een account dat <code>ttp up</code> toont.</p>
${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label for="username">Gebruikersnaam</label><input id="username" name="username" autocomplete="username" required>
<label for="password">Wachtwoord</label><input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Inloggen</button></form>`);
}

function samePassword(given, expected) {
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16384) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, html) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { uid, prompt } = details;
  if (req.method === 'GET') {
    if (prompt.name !== 'login') throw new Error(`unexpected prompt ${prompt.name}`);
    return send(res, 200, loginForm(uid));
  }
  if (req.method === 'POST' && req.url.endsWith('/login')) {
    const form = await readForm(req);
    const account = accounts.get(form.get('username') || '');
    if (!account || !samePassword(form.get('password') || '', account.password)) {
      return send(res, 401, loginForm(uid, 'Onjuiste gebruikersnaam of wachtwoord.'));
    }
    return provider.interactionFinished(req, res, { login: { accountId: account.sub } }, { mergeWithLastSubmission: false });
  }
  return send(res, 405, page('Niet toegestaan', '<h1>Niet toegestaan</h1>'));
}

const callback = provider.callback();
const server = createServer({ cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey), minVersion: 'TLSv1.2' }, (req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      console.error(JSON.stringify({ level: 'error', message: 'interaction failed', error: String(err && err.message) }));
      if (!res.headersSent) send(res, 400, page('Fout', '<h1>Inloggen mislukt</h1><p>Begin opnieuw bij het portaal.</p>'));
    });
    return;
  }
  callback(req, res);
});
server.listen(config.port, config.host, () => {
  console.log(JSON.stringify({ level: 'info', message: 'dev OpenID provider listening', issuer: config.issuer }));
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => server.close(() => process.exit(0)));
