import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildOrder, imageTags, parseDockerInfo, readDockerInfo } from '../../src/spec/docker-info.js';
import { fingerprintImage } from '../../src/spec/fingerprint.js';

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
      platforms: [],
      artifacts: [],
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

describe('readDockerInfo', () => {
  const multi = (images: unknown[]) => JSON.stringify({ images });
  const badMulti = (images: unknown, pattern: RegExp) => assert.throws(() => readDockerInfo(JSON.stringify({ images })), pattern);

  it('reads the single-object format as one image without dependencies', () => {
    const info = readDockerInfo('{"service_name": "api", "version": "1.4.2"}');
    assert.equal(info.format, 'single');
    assert.deepEqual(info.images.map((i) => [i.serviceName, i.needs]), [['api', []]]);
  });

  it('reads a list of images with depends_on', () => {
    const info = readDockerInfo(
      multi([
        { service_name: 'api', version: '2', context: 'api', depends_on: ['base'] },
        { service_name: 'base', version: '1', context: 'base' },
        { service_name: 'web', version: '3', context: 'web' },
      ]),
    );
    assert.equal(info.format, 'multi');
    assert.deepEqual(info.images.map((i) => [i.serviceName, i.context, i.needs]), [['api', 'api', ['base']], ['base', 'base', []], ['web', 'web', []]]);
    assert.deepEqual(buildOrder(info.images).map((i) => i.serviceName), ['base', 'api', 'web']);
  });

  it('names the entry and the field that is wrong', () => {
    badMulti([{ service_name: 'api', version: '1' }, { service_name: 'web' }], /images\.1 \(web\) version is required/);
    badMulti([{ service_name: 'api', version: '1', tags: ['latest'] }], /images\.0 \(api\) tags\.0 latest is managed/);
    badMulti([{ service_name: 'api', version: '1' }, { service_name: 'api', version: '2' }], /images\.1 \(api\) service_name is a duplicate of images\.0/);
    badMulti([{ service_name: 'api', version: '1', depends_on: ['bsae'] }], /images\.0 \(api\) depends_on names "bsae", which is not a service_name in images/);
    badMulti([{ service_name: 'api', version: '1', depends_on: 'base' }], /images\.0 \(api\) depends_on must be an array/);
    badMulti([], /images must be a non-empty array/);
    badMulti('api', /images must be a non-empty array/);
    badMulti([42], /images\.0 must be an object/);
    assert.throws(() => readDockerInfo('{"service_name": "api", "version": "1", "depends_on": ["base"]}'), /depends_on needs the \{"images": \[\.\.\.\]\} format/);
    assert.throws(() => readDockerInfo('{"service_name": "api", "version": "1", "images": []}'), /either "images" or a top-level "service_name"/);
  });

  it('refuses a dependency cycle, naming where it starts', () => {
    badMulti(
      [
        { service_name: 'web', version: '1' },
        { service_name: 'api', version: '1', depends_on: ['base'] },
        { service_name: 'base', version: '1', depends_on: ['api'] },
      ],
      /images\.1 \(api\) depends_on makes a cycle: api → base → api/,
    );
    badMulti([{ service_name: 'api', version: '1', depends_on: ['api'] }], /images\.0 \(api\) depends_on makes a cycle: api → api/);
  });
});

describe('fingerprintImage', () => {
  const spec = readDockerInfo('{"service_name": "api", "version": "1", "context": "api", "build_args": {"B": "2", "A": "1"}}').images[0];
  const inputs = { contextTree: 'a'.repeat(40), dockerfileBlob: 'b'.repeat(40), registry: 'r:5000', needs: { base: 'sha256:1' } };

  it('ignores the version and tags, and the order of build args', () => {
    const same = readDockerInfo('{"service_name": "api", "version": "9", "tags": ["x"], "context": "api", "build_args": {"A": "1", "B": "2"}}').images[0];
    assert.equal(fingerprintImage(spec, inputs), fingerprintImage(same, inputs));
  });

  it('changes with the tree, the Dockerfile, build args, target, registry and dependencies', () => {
    const base = fingerprintImage(spec, inputs);
    assert.notEqual(fingerprintImage(spec, { ...inputs, contextTree: 'c'.repeat(40) }), base);
    assert.notEqual(fingerprintImage(spec, { ...inputs, dockerfileBlob: 'c'.repeat(40) }), base);
    assert.notEqual(fingerprintImage(spec, { ...inputs, registry: 'other:5000' }), base);
    assert.notEqual(fingerprintImage(spec, { ...inputs, needs: { base: 'sha256:2' } }), base);
    assert.notEqual(fingerprintImage({ ...spec, buildArgs: { A: '1' } }, inputs), base);
    assert.notEqual(fingerprintImage({ ...spec, target: 'prod' }, inputs), base);
    assert.notEqual(fingerprintImage({ ...spec, platforms: ['linux/amd64', 'linux/arm64'] }, inputs), base);
    assert.notEqual(fingerprintImage({ ...spec, artifacts: [{ name: 'dist', path: '/dist' }] }, inputs), base);
  });

  it('is the same as before platforms and artifacts existed for an image without them, and ignores their order', () => {
    // Upgrading dockhook must not rebuild every unchanged image.
    // The value fingerprint.ts gave before the two fields were added.
    assert.equal(fingerprintImage(spec, inputs), 'sha256:70eaa389b1e37aa81df4acff72006bad9deef1484fdc8429cbc451142662d5e3');
    assert.equal(
      fingerprintImage({ ...spec, platforms: ['linux/arm64', 'linux/amd64'] }, inputs),
      fingerprintImage({ ...spec, platforms: ['linux/amd64', 'linux/arm64'] }, inputs),
    );
  });
});

describe('platforms and artifacts in dockerInfo.json', () => {
  const one = (extra: Record<string, unknown>) => readDockerInfo(JSON.stringify({ service_name: 'api', version: '1', ...extra })).images[0]!;
  const refuses = (extra: Record<string, unknown>, pattern: RegExp) => assert.throws(() => one(extra), pattern);

  it('reads platforms in their canonical spelling', () => {
    assert.deepEqual(one({ platforms: ['linux/amd64', 'linux/arm64/v8', 'linux/arm/v7', 'linux/i386'] }).platforms, ['linux/amd64', 'linux/arm64', 'linux/arm/v7', 'linux/386']);
    assert.deepEqual(one({}).platforms, []);
  });

  it('refuses a bad, empty or duplicated platform list, naming the field', () => {
    refuses({ platforms: ['linux/arm64/v8/extra'] }, /platforms\.0 "linux\/arm64\/v8\/extra" is not a platform/);
    refuses({ platforms: ['arm64'] }, /platforms\.0 "arm64" is not a platform: write os\/architecture/);
    refuses({ platforms: [] }, /platforms must list at least one platform/);
    refuses({ platforms: 'linux/amd64' }, /platforms must be an array/);
    refuses({ platforms: ['linux/arm64', 'linux/arm64/v8'] }, /platforms\.1 linux\/arm64 is listed twice/);
  });

  it('reads artifacts with absolute, normalised paths', () => {
    assert.deepEqual(one({ artifacts: [{ name: 'dist', path: '/app/dist/' }, { name: 'docs.v1', path: '/usr//share/doc' }] }).artifacts, [
      { name: 'dist', path: '/app/dist' },
      { name: 'docs.v1', path: '/usr/share/doc' },
    ]);
  });

  it('refuses relative paths, bad or duplicate names', () => {
    refuses({ artifacts: [{ name: 'dist', path: 'app/dist' }] }, /artifacts\.0\.path must be an absolute path inside the image/);
    refuses({ artifacts: [{ name: 'Dist', path: '/dist' }] }, /artifacts\.0\.name must be 1 to 40 lowercase letters/);
    refuses({ artifacts: [{ name: 'dist', path: '/a' }, { name: 'dist', path: '/b' }] }, /artifacts\.1\.name dist is used twice/);
    refuses({ artifacts: [{ path: '/a' }] }, /artifacts\.0\.name/);
  });

  it("keeps tags starting with _ for dockhook's own", () => {
    refuses({ tags: ['_platform-x'] }, /tags\.0 must not start with _/);
    refuses({ version: '_1' }, /version must not start with _/);
  });
});
