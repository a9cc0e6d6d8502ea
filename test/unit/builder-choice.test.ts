import assert from 'node:assert/strict';
import { it } from 'node:test';
import { decideBuilder } from '../../src/pipeline/builder-choice.js';
import { classifyEngineError, classifySessionError } from '../../src/pipeline/engine-errors.js';
import { identifyFromVersion, type EngineIdentity } from '../../src/pipeline/engine-identity.js';

// GET /version as each engine answered it on this machine (trimmed to the fields read).
const DOCKER_VERSION = {
  Components: [{ Name: 'Engine', Version: '20.10.24+dfsg1' }, { Name: 'containerd', Version: '1.6.20~ds1' }],
  Version: '20.10.24+dfsg1',
  ApiVersion: '1.41',
  Os: 'linux',
};
const PODMAN_VERSION = {
  Components: [{ Name: 'Podman Engine', Version: '4.3.1' }, { Name: 'Conmon', Version: 'conmon version 2.1.6, commit: unknown' }],
  Version: '4.3.1',
  ApiVersion: '1.41',
  Os: 'linux',
};

it('tells Podman from Docker by /version Components, or by the Libpod-Api-Version header alone', () => {
  assert.deepEqual(identifyFromVersion(DOCKER_VERSION), { name: 'Docker', version: '20.10.24+dfsg1', apiVersion: '1.41', os: 'linux' });
  assert.deepEqual(identifyFromVersion(PODMAN_VERSION, { 'libpod-api-version': '4.3.1' }), { name: 'Podman', version: '4.3.1', apiVersion: '1.41', os: 'linux' });
  assert.equal(identifyFromVersion({ ...PODMAN_VERSION, Components: null }, { 'libpod-api-version': '4.3.1' }).name, 'Podman');
  assert.equal(identifyFromVersion({ ...PODMAN_VERSION, Components: null }).name, 'Docker', 'neither signal: taken for Docker');
});

it('auto picks BuildKit only where the engine has it; BUILDER=buildkit on Podman is a problem named with its fix', () => {
  const docker: EngineIdentity = { name: 'Docker', version: '20.10.24', apiVersion: '1.41', os: 'linux' };
  const podman: EngineIdentity = { name: 'Podman', version: '4.3.1', apiVersion: '1.41', os: 'linux' };
  assert.equal(decideBuilder(docker, 'auto').builder, 'buildkit');
  assert.deepEqual(decideBuilder(podman, 'auto'), { builder: 'classic', reason: 'BUILDER=auto: Podman has no BuildKit' });
  assert.equal(decideBuilder({ ...docker, apiVersion: '1.38' }, 'auto').builder, 'classic');
  assert.equal(decideBuilder({ ...docker, os: 'windows' }, 'auto').builder, 'classic');
  assert.equal(decideBuilder(podman, 'classic').problem, undefined);
  assert.equal(decideBuilder(docker, 'buildkit').problem, undefined);
  assert.equal(decideBuilder(podman, 'buildkit').builder, 'buildkit', 'a forced setting is obeyed');
  assert.match(decideBuilder(podman, 'buildkit').problem ?? '', /Podman has no BuildKit.*set BUILDER=classic/);
});

// Errors shaped as docker-modem makes them for a 404 (message, statusCode, reason).
const modemError = (statusCode: number, reason: string | undefined, body: string) =>
  Object.assign(new Error(`(HTTP code ${statusCode}) ${reason ?? 'unexpected'} - ${body} `), { statusCode, reason });

it('a 404 on BuildKit\'s session says so and names BUILDER=classic, whoever opened the session', () => {
  for (const err of [
    modemError(404, undefined, 'Not Found'), // dockerode's own session against Podman
    modemError(404, 'the engine has no BuildKit session endpoint', 'Not Found'), // a session that names it
    modemError(404, undefined, 'page not found'), // dockerd's missing-route answer
  ]) {
    const classified = classifyEngineError(err, 'starting the build');
    assert.match(classified.message, /refused BuildKit's session .*set BUILDER=classic$/);
    assert.ok(classified.message.length <= 140, 'fits a commit status');
    assert.equal(classified.transient, false);
    assert.doesNotMatch(classified.message, /unexpected/);
  }
  // A 404 that names what is missing is not about the session.
  assert.equal(classifySessionError(modemError(404, 'no such image', 'No such image: x:1')), undefined);
  assert.match(classifyEngineError(modemError(404, 'no such image', 'No such image: x:1'), 'finding the built image').message, /No such image: x:1/);
  assert.equal(classifySessionError(modemError(500, 'server error', 'Not Found')), undefined);
});
