// The OpenID Provider the tests sign in against: node-oidc-provider (OpenID Certified) with plain
// HTML forms for its one interaction (who are you?), no consent screen (Sluice is a first-party
// client), and the device authorization grant. Everything comes from the environment:
//   PORT, ISSUER, KEYS (a private JWKS), ACCOUNTS (a list of {email, email_verified, name, groups}),
//   CLIENTS (oidc-provider client metadata). Prints "ready <issuer>" once it listens.
import Provider from 'oidc-provider';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const accounts = new Map(JSON.parse(env('ACCOUNTS')).map((a) => [a.email, a]));
const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
const page = (title, body) => `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head><body>${body}</body></html>`;

const provider = new Provider(env('ISSUER'), {
  clients: JSON.parse(env('CLIENTS')),
  jwks: JSON.parse(env('KEYS')),
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
    groups: ['groups'],
  },
  scopes: ['openid', 'email', 'profile', 'groups', 'offline_access'],
  conformIdTokenClaims: false, // put the granted claims in the ID token, as Okta and Entra ID do
  findAccount: async (_ctx, id) => {
    const account = accounts.get(id);
    if (!account) return undefined;
    return {
      accountId: id,
      claims: async () => ({
        sub: id,
        email: account.email,
        email_verified: account.email_verified,
        name: account.name,
        groups: account.groups || [],
      }),
    };
  },
  // A first-party client: every requested scope is granted without a consent screen.
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid email profile groups');
    await grant.save();
    return grant;
  },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  features: {
    devInteractions: { enabled: false },
    deviceFlow: {
      enabled: true,
      userCodeInputSource: async (ctx, form, _out, err) => {
        ctx.body = page('Enter code', `${err ? '<p class="error">That code is not valid.</p>' : ''}${form}<button type="submit" form="op.deviceInputForm">Continue</button>`);
      },
      userCodeConfirmSource: async (ctx, form, _client, _info, userCode) => {
        ctx.body = page('Confirm', `<p>Code <code>${escape(userCode)}</code></p>${form}<button type="submit" form="op.deviceConfirmForm">Continue</button>`);
      },
      successSource: async (ctx) => {
        ctx.body = page('Done', '<p>Signed in; return to your device.</p>');
      },
    },
  },
  pkce: { required: () => true },
  ttl: { IdToken: 3600, AccessToken: 3600, AuthorizationCode: 60, DeviceCode: 600, Interaction: 600, Session: 3600, Grant: 3600 },
});
provider.proxy = false;

// The one interaction: a form asking who signs in (no password: the tests play each person).
provider.use(async (ctx, next) => {
  const match = ctx.path.match(/^\/interaction\/([^/]+)(\/login)?$/);
  if (!match) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (ctx.method === 'GET') {
    ctx.type = 'html';
    ctx.body = page('Sign in', `<form method="post" action="/interaction/${escape(details.uid)}/login"><input name="login" type="email"><button type="submit">Sign in</button></form>`);
    return undefined;
  }
  if (ctx.method === 'POST' && match[2]) {
    const raw = await new Promise((resolve) => {
      let data = '';
      ctx.req.on('data', (chunk) => { data += chunk; });
      ctx.req.on('end', () => resolve(data));
    });
    const login = new URLSearchParams(raw).get('login') || '';
    if (!accounts.has(login)) {
      ctx.status = 400;
      ctx.type = 'html';
      ctx.body = page('Sign in', '<p class="error">No such account.</p>');
      return undefined;
    }
    await provider.interactionFinished(ctx.req, ctx.res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
    ctx.respond = false;
    return undefined;
  }
  return next();
});

const server = provider.listen(Number(env('PORT')), '127.0.0.1', () => {
  process.stdout.write(`ready ${env('ISSUER')}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
