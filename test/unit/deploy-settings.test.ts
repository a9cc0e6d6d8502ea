import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planDeploy, type DeployPolicy } from '../../src/deploy/deploy-settings.js';
import { readDockerInfo } from '../../src/spec/docker-info.js';

const policy: DeployPolicy = { images: ['api', 'web'], allowBinds: ['/srv/shared'] };
const refused = (raw: unknown, field: string, pattern: RegExp, p = policy) => {
  const d = planDeploy('api', raw, p);
  assert.equal(d.outcome, 'refused', JSON.stringify(d));
  if (d.outcome !== 'refused') return;
  assert.equal(d.field, field);
  assert.match(d.reason, pattern);
};

describe('planDeploy: what a repository may ask of the host', () => {
  it('plans ports, named volumes, env, command and the wait', () => {
    const d = planDeploy('api', { ports: ['8080:80', '127.0.0.1:9090:90/udp'], volumes: ['appdata:/data', 'cache:/var/cache/app/:ro'], env: { MODE: 'prod', WORKERS: 4 }, command: ['serve', '--port', '80'], wait_seconds: 20 }, policy);
    assert.deepEqual(d, {
      outcome: 'planned',
      plan: {
        service: 'api',
        ports: [
          { hostPort: 8080, containerPort: 80, protocol: 'tcp' },
          { hostIp: '127.0.0.1', hostPort: 9090, containerPort: 90, protocol: 'udp' },
        ],
        volumes: [
          { source: 'appdata', kind: 'volume', target: '/data', readOnly: false },
          { source: 'cache', kind: 'volume', target: '/var/cache/app', readOnly: true },
        ],
        env: { MODE: 'prod', WORKERS: '4' },
        command: ['serve', '--port', '80'],
        waitSeconds: 20,
      },
    });
  });

  it('asks nothing without a deploy entry, and skips an image the operator did not allow, saying why', () => {
    assert.deepEqual(planDeploy('api', undefined, policy), { outcome: 'none' });
    const d = planDeploy('worker', { ports: ['8080:80'] }, policy);
    assert.equal(d.outcome, 'skipped');
    assert.match(d.outcome === 'skipped' ? d.reason : '', /worker is not in DEPLOY_IMAGES/);
  });

  it('refuses what would hand the host over, naming the field', () => {
    refused({ privileged: true }, 'deploy.privileged', /privileged mode/);
    refused({ network_mode: 'host' }, 'deploy.network_mode', /host network/);
    refused({ pid: 'host' }, 'deploy.pid', /PID namespace/);
    refused({ cap_add: ['SYS_ADMIN'] }, 'deploy.cap_add', /capabilities/);
    refused({ devices: ['/dev/sda'] }, 'deploy.devices', /devices/);
    refused({ security_opt: ['seccomp=unconfined'] }, 'deploy.security_opt', /security options/);
    refused({ volumes: ['/var/run/docker.sock:/var/run/docker.sock'] }, 'deploy.volumes.0', /Docker socket/);
    refused({ volumes: ['/run:/host-run'] }, 'deploy.volumes.0', /Docker socket/);
    refused({ volumes: ['/:/host'] }, 'deploy.volumes.0', /Docker socket/, { ...policy, allowBinds: ['/'] });
    refused({ something_new: 1 }, 'deploy.something_new', /is not a deploy setting/);
  });

  it('allows host paths only under DEPLOY_ALLOW_BINDS', () => {
    refused({ volumes: ['/etc:/host-etc'] }, 'deploy.volumes.0', /host path \/etc is not in DEPLOY_ALLOW_BINDS/);
    refused({ volumes: ['/srv/shared/../../etc:/x'] }, 'deploy.volumes.0', /host path \/etc is not in DEPLOY_ALLOW_BINDS/);
    refused({ volumes: ['/srv/sharedother:/x'] }, 'deploy.volumes.0', /not in DEPLOY_ALLOW_BINDS/);
    refused({ volumes: ['./data:/data'] }, 'deploy.volumes.0', /must be absolute/);
    const d = planDeploy('api', { volumes: ['/srv/shared/api:/shared:ro'] }, policy);
    assert.deepEqual(d.outcome === 'planned' ? d.plan.volumes : d, [{ source: '/srv/shared/api', kind: 'bind', target: '/shared', readOnly: true }]);
  });

  it('refuses malformed values, naming the field', () => {
    refused({ ports: ['80'] }, 'deploy.ports.0', /not a port mapping/);
    refused({ ports: ['70000:80'] }, 'deploy.ports.0', /not between 1 and 65535/);
    refused({ ports: ['8080:80', '8080:81'] }, 'deploy.ports.1', /already mapped by deploy.ports.0/);
    refused({ volumes: ['data'] }, 'deploy.volumes.0', /not a volume/);
    refused({ volumes: ['data:/x:rshared'] }, 'deploy.volumes.0', /mode must be ro or rw/);
    refused({ env: { 'BAD-NAME': 'x' } }, 'deploy.env.BAD-NAME', /NAME/);
    refused({ wait_seconds: 0 }, 'deploy.wait_seconds', /at least 1/);
    refused({ command: 'serve' }, 'deploy.command', /array of strings/);
    refused('yes', 'deploy', /must be an object/);
  });

  it('a bad deploy entry does not fail dockerInfo.json: the build goes on, the deploy is refused', () => {
    const [spec] = readDockerInfo(JSON.stringify({ service_name: 'api', version: '1', deploy: { privileged: true } })).images;
    assert.deepEqual(spec!.deploy, { privileged: true });
  });
});

describe('pullParams: what POST /images/create takes', () => {
  it('puts a digest or a tag in tag, and keeps the registry port', async () => {
    const { pullParams } = await import('../../src/engine/pull-image.js');
    assert.deepEqual(pullParams(`127.0.0.1:5000/team/api@sha256:${'a'.repeat(64)}`), { fromImage: '127.0.0.1:5000/team/api', tag: `sha256:${'a'.repeat(64)}` });
    assert.deepEqual(pullParams('127.0.0.1:5000/api:1.4.2'), { fromImage: '127.0.0.1:5000/api', tag: '1.4.2' });
    assert.deepEqual(pullParams('127.0.0.1:5000/api'), { fromImage: '127.0.0.1:5000/api', tag: 'latest' });
  });
});
