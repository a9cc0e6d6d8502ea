import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { imageTags, parseDockerInfo } from '../../src/spec/docker-info.js';

const bad = (json: unknown, pattern: RegExp) => assert.throws(() => parseDockerInfo(typeof json === 'string' ? json : JSON.stringify(json)), pattern);

describe('parseDockerInfo', () => {
  it("reads the seeds' format unchanged, with defaults", () => {
    assert.deepEqual(parseDockerInfo('{"service_name": "api", "version": "1.4.2"}'), {
      serviceName: 'api',
      version: '1.4.2',
      dockerfile: 'Dockerfile',
      context: '',
      buildArgs: {},
      target: undefined,
      extraTags: [],
    });
  });

  it('ignores keys it does not know (the seeds carried a "type")', () => {
    assert.equal(parseDockerInfo('{"service_name": "api", "version": "1", "type": "Docker"}').serviceName, 'api');
  });

  it('reads every optional field', () => {
    const spec = parseDockerInfo(
      JSON.stringify({ service_name: 'team/api', version: 'v2.0.0-rc.1', dockerfile: './docker/prod.Dockerfile', context: 'services/api/', build_args: { NODE_ENV: 'production', WORKERS: 4 }, target: 'runtime', tags: ['stable', 'v2'] }),
    );
    assert.equal(spec.dockerfile, 'docker/prod.Dockerfile');
    assert.equal(spec.context, 'services/api');
    assert.deepEqual(spec.buildArgs, { NODE_ENV: 'production', WORKERS: '4' });
    assert.equal(spec.target, 'runtime');
    assert.deepEqual(spec.extraTags, ['stable', 'v2']);
  });

  it('names the field that is wrong', () => {
    bad({ version: '1' }, /service_name is required/);
    bad({ service_name: 'api' }, /version is required/);
    bad({ service_name: 'API', version: '1' }, /service_name must be a Docker repository name/);
    bad({ service_name: 'my api', version: '1' }, /service_name must be a Docker repository name/);
    bad({ service_name: 'api', version: '-1' }, /version .*Docker tag/);
    bad({ service_name: 'api', version: 'a'.repeat(129) }, /version .*Docker tag/);
    bad({ service_name: 'api', version: '1', tags: ['ok', 'not ok'] }, /tags\.1 .*Docker tag/);
    bad({ service_name: 'api', version: '1', tags: 'x' }, /tags must be an array/);
    bad({ service_name: 'api', version: '1', tags: ['latest'] }, /latest is managed by dockhook/);
    bad({ service_name: 'api', version: '1', build_args: ['A=1'] }, /build_args must be an object/);
    bad({ service_name: 'api', version: '1', dockerfile: '../Dockerfile' }, /dockerfile must be a relative file path inside the repository/);
    bad({ service_name: 'api', version: '1', context: '/etc' }, /context must be a relative folder/);
    bad({ service_name: 'api', version: '1', context: 'app', dockerfile: '../Dockerfile' }, /dockerfile must be a relative file path inside/);
    bad({ service_name: 'api', version: true }, /version must be a string/);
    bad({ service_name: 42, version: '1' }, /service_name must be a string/);
  });

  it('refuses a file that is not a JSON object', () => {
    bad('{"service_name": "api",', /not valid JSON/);
    bad('[1]', /must be an object/);
  });

  it('accepts a number version as the seeds may have written it', () => {
    assert.equal(parseDockerInfo('{"service_name": "api", "version": 2}').version, '2');
  });
});

describe('imageTags', () => {
  it('pushes version, sha-<7> and extra tags once each', () => {
    const spec = parseDockerInfo('{"service_name": "api", "version": "1.4.2", "tags": ["stable", "1.4.2"]}');
    assert.deepEqual(imageTags(spec, '0123456789abcdef0123456789abcdef01234567'), ['1.4.2', 'sha-0123456', 'stable']);
  });
});
