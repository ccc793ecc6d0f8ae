// The peer for openxp's benchmark: oidc-provider (npm) on 127.0.0.1.
//
// One confidential client (client_secret_basic), the authorization_code,
// refresh_token and client_credentials grants, introspection, and an in-memory adapter backed by a
// plain Map (unbounded: nothing is ever evicted). Before it listens it
// pre-issues authorization codes, refresh tokens and access tokens through the
// provider's own models and writes them, one per line, to --out, so the load
// generator can spend each one exactly once.
//
// The setup mirrors what openxp is measured with: no PKCE (confidential
// client), no ID token (no `openid` scope, so nothing is signed), opaque
// tokens, refresh tokens rotated on every use (as openxp does), and
// introspection allowed for the client's own tokens only.
//
// Usage: node bench/oidc_peer.mjs --port P --out DIR --codes N --refresh N --access N
// Prints one line `READY <json>` on stdout when it is listening.

import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '3000' },
    out: { type: 'string', default: '.' },
    codes: { type: 'string', default: '1000' },
    refresh: { type: 'string', default: '1000' },
    access: { type: 'string', default: '10' },
  },
});

const PORT = Number(args.port);
const ISSUER = `http://127.0.0.1:${PORT}`;
const CLIENT_ID = 'bench-client';
const CLIENT_SECRET = 'bench-secret-' + 'x'.repeat(40);
const REDIRECT_URI = 'https://app.bench.test/cb';
const ACCOUNT_ID = 'account-1';
const SCOPE = 'offline_access';
const DAY = 24 * 3600;

// ---- the adapter: one Map per model, nothing expires or is evicted --------

const stores = new Map();

class MemoryAdapter {
  constructor(name) {
    this.name = name;
    if (!stores.has(name)) stores.set(name, new Map());
    this.items = stores.get(name);
  }

  async upsert(id, payload) {
    this.items.set(id, payload);
  }

  async find(id) {
    return this.items.get(id);
  }

  async findByUserCode(userCode) {
    for (const payload of this.items.values()) {
      if (payload.userCode === userCode) return payload;
    }
    return undefined;
  }

  async findByUid(uid) {
    for (const payload of this.items.values()) {
      if (payload.uid === uid) return payload;
    }
    return undefined;
  }

  async consume(id) {
    const payload = this.items.get(id);
    if (payload) payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    this.items.delete(id);
  }

  async revokeByGrantId(grantId) {
    // Revocation is not on the measured paths; a linear scan keeps the adapter a plain Map.
    for (const [id, payload] of this.items) {
      if (payload.grantId === grantId) this.items.delete(id);
    }
  }
}

// ---- the provider ---------------------------------------------------------

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'bench', alg: 'ES256', use: 'sig' };

const provider = new Provider(ISSUER, {
  adapter: MemoryAdapter,
  clients: [
    {
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'ES256',
    },
  ],
  jwks: { keys: [signingKey] },
  cookies: { keys: ['bench-cookie-key-not-secret'] },
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: {
      enabled: true,
      allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId,
    },
  },
  rotateRefreshToken: true,
  ttl: {
    AccessToken: 3600,
    AuthorizationCode: DAY,
    RefreshToken: 30 * DAY,
    Grant: 365 * DAY,
    Session: DAY,
    Interaction: 3600,
  },
});
provider.proxy = false;

// ---- pre-issue ------------------------------------------------------------

async function preIssue(kind, count, client) {
  const values = [];
  for (let i = 0; i < count; i += 1) {
    const grant = new provider.Grant({ accountId: ACCOUNT_ID, clientId: CLIENT_ID });
    grant.addOIDCScope(SCOPE);
    const grantId = await grant.save();
    const common = { accountId: ACCOUNT_ID, client, grantId, scope: SCOPE, gty: 'authorization_code' };
    let token;
    if (kind === 'codes') {
      token = new provider.AuthorizationCode({ ...common, redirectUri: REDIRECT_URI, authTime: Math.floor(Date.now() / 1000) });
    } else if (kind === 'refresh') {
      token = new provider.RefreshToken({ ...common, rotations: 0, iiat: Math.floor(Date.now() / 1000) });
    } else {
      token = new provider.AccessToken(common);
    }
    values.push(await token.save());
  }
  writeFileSync(join(args.out, `${kind}.txt`), values.join('\n') + '\n');
}

const client = await provider.Client.find(CLIENT_ID);
mkdirSync(args.out, { recursive: true });
await preIssue('codes', Number(args.codes), client);
await preIssue('refresh', Number(args.refresh), client);
await preIssue('access', Number(args.access), client);

provider.listen(PORT, '127.0.0.1', () => {
  const info = {
    issuer: ISSUER,
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    redirect_uri: REDIRECT_URI,
    token_path: '/token',
    introspection_path: '/token/introspection',
    node: process.version,
  };
  process.stdout.write(`READY ${JSON.stringify(info)}\n`);
});

// Exit at once: closing the server would wait for idle keep-alive connections.
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
