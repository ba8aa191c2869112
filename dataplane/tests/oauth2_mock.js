// The OAuth2 server of the end-to-end tests: the npm package `oauth2-mock-server` (RS256 JWTs, its
// JWKS at /jwks), started on 127.0.0.1 with a fresh key, plus what the tests steer through files in
// STATE_DIR (read on every token request):
//   expires-in       seconds the tokens live (`expires_in` and the JWT's `exp`), default 3600
//   down             present: the token endpoint answers 503
//   expected-secret  present: a client secret other than its content is refused (401 invalid_client)
//   reject-basic     present: credentials sent as HTTP Basic are refused (401 invalid_client), so the
//                    client must send them in the form
// Prints {"issuer": URL, "port": N} once listening, then one JSON line per token request:
// {"event": "token", "auth": "basic"|"form"|"none", "client_id", "secret_matches", "status",
//  "grant_type", "scope", "fields": [form field names]}. Never prints a secret.
//
//   NODE_PATH=<dir>/node_modules node oauth2_mock.js STATE_DIR

'use strict';

const fs = require('fs');
const path = require('path');
const { OAuth2Server } = require('oauth2-mock-server');

const stateDir = process.argv[2];
const state = (name) => {
  try {
    return fs.readFileSync(path.join(stateDir, name), 'utf8').trim();
  } catch {
    return undefined;
  }
};

function credentials(req) {
  const header = req.headers.authorization || '';
  if (header.startsWith('Basic ')) {
    const [id, secret] = Buffer.from(header.slice(6), 'base64').toString('utf8').split(':');
    return { auth: 'basic', id: decodeURIComponent(id.replace(/\+/g, ' ')), secret: decodeURIComponent((secret || '').replace(/\+/g, ' ')) };
  }
  if (req.body && req.body.client_id !== undefined) {
    return { auth: 'form', id: req.body.client_id, secret: req.body.client_secret || '' };
  }
  return { auth: 'none', id: undefined, secret: undefined };
}

async function main() {
  const server = new OAuth2Server();
  await server.issuer.keys.generate('RS256');
  server.service.on('beforeTokenSigning', (token) => {
    const expiresIn = Number(state('expires-in') || 3600);
    token.payload.exp = Math.floor(Date.now() / 1000) + expiresIn;
    token.payload.aud = 'otlp-backend';
  });
  server.service.on('beforeResponse', (response, req) => {
    const expiresIn = Number(state('expires-in') || 3600);
    const creds = credentials(req);
    const expected = state('expected-secret');
    const secretMatches = expected === undefined || creds.secret === expected;
    if (state('down') !== undefined) {
      response.statusCode = 503;
      response.body = { error: 'temporarily_unavailable', error_description: 'the mock is down' };
    } else if (creds.auth === 'basic' && state('reject-basic') !== undefined) {
      response.statusCode = 401;
      response.body = { error: 'invalid_client', error_description: 'send the credentials in the form' };
    } else if (!secretMatches) {
      response.statusCode = 401;
      response.body = { error: 'invalid_client', error_description: 'wrong client secret' };
    } else {
      response.body.expires_in = expiresIn;
    }
    console.log(JSON.stringify({
      event: 'token',
      auth: creds.auth,
      client_id: creds.id,
      secret_matches: secretMatches,
      status: response.statusCode,
      grant_type: req.body.grant_type,
      scope: req.body.scope,
      fields: Object.keys(req.body).sort(),
    }));
  });
  await server.start(0, '127.0.0.1');
  const port = server.address().port;
  console.log(JSON.stringify({ issuer: server.issuer.url, port }));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
