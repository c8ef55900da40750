// openid-client (node) against a running gha-auth: its default discovery (OIDC,
// `<issuer>/.well-known/openid-configuration`) on ISSUER, then a client-credentials grant,
// introspection and revocation with the endpoints it discovered; and both discovery forms on
// PATH_ISSUER, an issuer with a path (RFC 8414 §3.1 insertion, OIDC appending). Prints what it
// saw as JSON; any error fails the run.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const modules = process.env.NODE_MODULES;
const client = await import(pathToFileURL(join(modules, 'openid-client', 'build', 'index.js')).href);
const insecure = { execute: [client.allowInsecureRequests] }; // plain http on loopback

const config = await client.discovery(
  new URL(process.env.ISSUER),
  process.env.CLIENT_ID,
  process.env.CLIENT_SECRET,
  undefined,
  insecure,
);
const metadata = config.serverMetadata();
const tokens = await client.clientCredentialsGrant(config, { scope: 'jobs:read' });
const before = await client.tokenIntrospection(config, tokens.access_token);
await client.tokenRevocation(config, tokens.access_token);
const after = await client.tokenIntrospection(config, tokens.access_token);

const pathIssuer = new URL(process.env.PATH_ISSUER);
const oidc = await client.discovery(pathIssuer, 'anyone', undefined, undefined, insecure);
const oauth2 = await client.discovery(pathIssuer, 'anyone', undefined, undefined, {
  ...insecure,
  algorithm: 'oauth2',
});

process.stdout.write(JSON.stringify({
  issuer: metadata.issuer,
  token_endpoint: metadata.token_endpoint,
  token_type: tokens.token_type,
  scope: tokens.scope,
  active_before_revocation: before.active,
  active_after_revocation: after.active,
  path_oidc_issuer: oidc.serverMetadata().issuer,
  path_oauth2_issuer: oauth2.serverMetadata().issuer,
}));
