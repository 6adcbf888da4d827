// Nosana's node's engine calls, made with its own client library (dockerode 4, and undici for
// libpod), with the node's options in the node's order (nosana-ci/nosana-node, src/NodeManager:
// node/resource/volume/volumeManager.ts, node/resource/helpers/create*Args.ts,
// provider/containerOrchestration/{docker,podman}). Usage:
//   node nosana_node.mjs SOCKET ACTION JSON      -> one JSON line on stdout
// Actions: health, helper, job, passthrough, pull. Run by tests/integration/test_node_socket.py.
import { createRequire } from 'module';

const require = createRequire(process.env.NOSANA_NODE_MODULES + '/');
const Docker = require('dockerode');
const { fetch, Agent } = require('undici');

const [socketPath, action, argJson] = process.argv.slice(2);
const args = JSON.parse(argJson || '{}');
const docker = new Docker({ socketPath });
const HELPER = 'registry.hub.docker.com/nosana/resource-manager:v1.1.19';

function demux(buffer) {
  // extractLogsAndResultsFromLogBuffer: 8-byte headers, then lines (timestamps stripped).
  const lines = [];
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const size = buffer.readUInt32BE(offset + 4);
    const text = buffer.subarray(offset + 8, offset + 8 + size).toString('utf8');
    offset += 8 + size;
    for (const line of text.split('\n')) {
      if (line) lines.push({ stream: buffer[offset - 8 - size], log: line.replace(/^\d{4}-\d\d-\d\dT\S+Z /, '') });
    }
  }
  return lines;
}

function reportedErrors(lines) {
  const found = [];
  for (const { log } of lines) {
    try {
      const value = JSON.parse(log);
      if (value && value.event === 'error' && typeof value.message === 'string') found.push(value.message);
    } catch (_) { /* not an envelope */ }
  }
  return found;
}

async function hasImage(image) {
  const images = await docker.listImages();
  return images.some(({ RepoTags }) => (RepoTags || []).includes(image));
}

function pull(image) {
  // DockerExtended.promisePull: dockerode's pull, progress followed with followProgress.
  return new Promise((resolve, reject) => docker.pull(image, {}, (err, stream) => {
    if (err) return reject(err);
    const events = [];
    docker.modem.followProgress(stream, (error) => (error ? reject(error) : resolve(events)),
      (event) => events.push(event));
  }));
}

function helperOptions(volumeName) {
  const mounts = { Mounts: [{ Target: '/s3/temp', Source: volumeName, Type: 'volume' }] };
  return {
    AttachStdin: false, AttachStdout: true, AttachStderr: true, Tty: false, OpenStdin: false,
    StdinOnce: false, Cmd: args.cmd, Image: HELPER, Env: args.env, HostConfig: mounts,
  };
}

async function helper() {
  const pulled = (await hasImage(HELPER)) ? [] : await pull(HELPER);
  let volumeName = args.volume;
  if (!volumeName) {
    const response = await docker.createVolume({ Name: undefined });
    volumeName = response.name || response.Name;
  }
  const container = await docker.createContainer(helperOptions(volumeName));
  await container.start();
  const logStream = await container.logs({ stdout: true, stderr: false, follow: true });
  const statuses = [];
  logStream.on('data', (logBuffer) => {
    try {
      const logString = logBuffer.toString('utf8');
      const logJSON = JSON.parse(logString.slice(8, logString.length - 1));
      if (logJSON.event === 'status') statuses.push(logJSON);
    } catch (error) { statuses.push({ unparsed: logBuffer.toString('base64') }); }
  });
  const { StatusCode } = await container.wait({ condition: 'not-running' });
  await new Promise((resolve) => (logStream.readableEnded ? resolve() : logStream.on('end', resolve)));
  if (StatusCode !== 0) {
    const errorBuffer = await container.logs({
      follow: false, stdout: false, stderr: true, tail: 24999, timestamps: true,
    });
    const lines = demux(errorBuffer);
    await container.remove({ force: true });
    const volume = docker.getVolume(volumeName);
    await volume.inspect();
    await volume.remove({ force: true });
    return { exit: StatusCode, error: reportedErrors(lines).at(-1), lines, statuses, volumeName };
  }
  await container.stop().catch(() => {});
  const info = await container.inspect();
  await container.remove({ force: true, v: true });
  const volumes = (await docker.listVolumes()).Volumes;
  const inspected = await docker.getVolume(volumeName).inspect();
  return {
    exit: StatusCode, id: container.id, state: info.State.Status, statuses, pulled: pulled.length,
    volumeName, mountpoint: inspected.Mountpoint, listed: volumes.some((v) => v.Name === volumeName),
  };
}

async function network() {
  const networks = await docker.listNetworks();
  if (networks.some((n) => n.Name === 'NOSANA_GATEWAY')) return;
  await docker.createNetwork({
    Name: 'NOSANA_GATEWAY', Driver: 'bridge',
    IPAM: { Driver: 'default', Config: [{ Subnet: args.subnet, Gateway: args.gateway }] },
  });
}

function dockerRunOptions() {
  // createDockerRunOptions
  return {
    name: args.name, Hostname: '', User: '', AttachStdin: false, AttachStdout: true,
    AttachStderr: true, Tty: false, OpenStdin: false, StdinOnce: false,
    Env: Object.entries(args.env ?? {}).map(([key, value]) => `${key}=${value.toString()}`),
    Cmd: args.cmd, Image: args.image, WorkingDir: undefined, Entrypoint: undefined,
    NetworkingConfig: { EndpointsConfig: { NOSANA_GATEWAY: {} } },
    HostConfig: {
      ExtraHosts: ['host.docker.internal:8.8.8.8', 'host.containers.internal:8.8.8.8'],
      Mounts: args.volumes.map(({ dest, name, readonly }) => ({
        Target: dest, Source: name, Type: 'volume', ReadOnly: readonly || false,
      })),
      NetworkMode: 'bridge', DeviceRequests: [], RestartPolicy: undefined,
    },
  };
}

function podmanRunOptions() {
  // createPodmanRunOptions
  return {
    image: args.image, name: args.name, command: args.cmd,
    volumes: args.volumes.map((v) => ({ dest: v.dest, name: v.name, Options: v.readonly ? ['ro'] : [] })),
    env: args.env, devices: [],
    hostadd: ['host.docker.internal:8.8.8.8', 'host.containers.internal:8.8.8.8'],
    netns: { nsmode: 'bridge' }, Networks: { NOSANA_GATEWAY: {} },
    create_working_dir: true, cgroups_mode: 'enabled', work_dir: undefined,
  };
}

async function libpod(path, options) {
  options.dispatcher = new Agent({ connect: { socketPath } });
  return fetch(`http://localhost/v4.5.0/libpod${path}`, options);
}

async function job() {
  if (!(await hasImage(args.image))) await pull(args.image);
  await network();
  let container;
  if (args.podman) {
    const create = await libpod('/containers/create', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(podmanRunOptions()),
    });
    if (create.status !== 201) throw new Error(`libpod create: ${create.status} ${await create.text()}`);
    const { Id } = await create.json();
    const start = await libpod(`/containers/${Id}/start`, { method: 'POST' });
    if (start.status !== 204) throw new Error(`libpod start: ${start.status} ${await start.text()}`);
    container = docker.getContainer(Id);
  } else {
    container = await docker.createContainer(dockerRunOptions());
    await container.start();
  }
  const { StatusCode } = await container.wait({ condition: 'not-running' });
  const logs = demux(await container.logs({ stdout: true, stderr: true, follow: false }));
  const info = await container.inspect();
  await container.remove({ force: true });
  return { exit: StatusCode, logs: logs.map((l) => l.log), env: info.Config.Env, hosts: info.HostConfig.ExtraHosts };
}

async function passthrough() {
  const events = await pull(args.image);
  const container = await docker.createContainer({
    Image: args.image, Cmd: ['sh', '-c', 'for i in 1 2 3; do echo line$i; sleep 0.3; done; sleep 60'],
    Tty: false, HostConfig: { NetworkMode: 'none' },
  });
  await container.start();
  const exec = await container.exec({ Cmd: ['sh', '-c', 'echo exec-out; echo exec-err >&2; exit 3'], AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  const out = []; const err = [];
  docker.modem.demuxStream(stream, { write: (c) => out.push(c.toString()) }, { write: (c) => err.push(c.toString()) });
  await new Promise((resolve) => stream.on('end', resolve));
  const execInfo = await exec.inspect();
  const follow = await container.logs({ stdout: true, stderr: true, follow: true });
  const followed = [];
  await new Promise((resolve) => {
    follow.on('data', (chunk) => {
      followed.push(chunk.toString('utf8'));
      if (followed.join('').includes('line3')) resolve();
    });
  });
  follow.destroy();
  const waiting = container.wait({ condition: 'not-running' });
  await container.kill();
  const waited = await waiting;
  await container.remove({ force: true });
  return {
    pullEvents: events.length, pullStatuses: events.map((e) => e.status),
    execOut: out.join(''), execErr: err.join(''), execExit: execInfo.ExitCode,
    followed: followed.join('').includes('line1') && followed.join('').includes('line3'),
    waited: waited.StatusCode,
  };
}

async function pullImage() {
  // The node's pull of a job's image (DockerExtended.promisePull), then what the engine has.
  const events = await pull(args.image);
  const info = await docker.getImage(args.image).inspect();
  return { events, id: info.Id, tags: info.RepoTags };
}

async function health() {
  // DockerContainerOrchestration.healthy(): GET /info must carry an ID.
  try {
    const info = await docker.info();
    return { healthy: Boolean(info && info.ID) };
  } catch (error) {
    return { healthy: false, error: String(error.code || error.message) };
  }
}

const actions = { health, helper, job, passthrough, pull: pullImage };
try {
  console.log(JSON.stringify(await actions[action]()));
} catch (error) {
  console.log(JSON.stringify({ thrown: String(error.message || error), statusCode: error.statusCode }));
  process.exitCode = 1;
}
