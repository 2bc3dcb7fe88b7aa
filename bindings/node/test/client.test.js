'use strict';
// The Node.js binding against the dev gateway (node --test; make test-node).
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const path = require('node:path');
const readline = require('node:readline');

const { Client, InvalidArgumentError, InvalidStateError, version } = require('..');

const ROOT = path.resolve(__dirname, '..', '..', '..');
const PYTHON = process.env.UBG_PYTHON || path.join(ROOT, '.venv', 'bin', 'python3');
const FAST = { reconnect: [50, 400] };

/** The dev gateway as a child process; it exits when its stdin (our pipe) closes. */
async function devGateway(...flags) {
  const child = spawn(PYTHON, ['-m', 'utilbot_gateway.devserver', '--heartbeat', '200', '--heartbeat-grace', '2000', '--key', 'dev-key', ...flags], {
    env: { ...process.env, PYTHONPATH: path.join(ROOT, 'bindings', 'python') },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = readline.createInterface({ input: child.stdout });
  const [line] = await Promise.race([
    new Promise((resolve) => lines.once('line', (l) => resolve([l]))),
    new Promise((_, reject) => setTimeout(() => reject(new Error('the dev gateway printed nothing')), 30000)),
  ]);
  const info = JSON.parse(line);
  return {
    url: (query = 'v=1') => `${info.url}?${query}`,
    ca: info.ca,
    stop: () => new Promise((resolve) => {
      child.once('exit', resolve);
      child.stdin.end();
    }),
  };
}

function once(emitter, name, timeout = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${name}' within ${timeout} ms`)), timeout);
    emitter.once(name, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

test('version and argument errors are typed', () => {
  assert.match(version(), /^\d+\.\d+\.\d+$/);
  assert.throws(() => new Client(''), InvalidArgumentError);
  assert.throws(() => new Client('dev-key', { url: 'http://not-websocket/' }), (error) => error instanceof InvalidArgumentError && error.code === 'UBG_EINVAL');
  const client = new Client('dev-key');
  assert.throws(() => client.send('x', {}), (error) => error instanceof InvalidStateError && error.code === 'UBG_ESTATE');
  assert.equal(client.state, 'IDLE');
  client.free();
  client.free(); // idempotent
});

test('ready, events by name, send, and a close that resolves', async () => {
  const gateway = await devGateway();
  const client = new Client('dev-key', { url: gateway.url(), ...FAST });
  const states = [];
  client.on('state', (state) => states.push(state));
  client.connect();
  await once(client, 'ready');
  assert.equal(client.state, 'READY');
  const counted = once(client, 'GLOBAL_GUILD_COUNT');
  client.send('send_servers', { guilds: 3, guildMembers: 30, cachedGuildMembers: 10 });
  const [data] = await counted;
  assert.deepEqual(data, { guilds: 3, guildMembers: 30, cachedGuildMembers: 10 });
  assert.throws(() => client.send('', {}), (error) => error instanceof InvalidArgumentError && /empty/.test(error.message));
  await client.close(1000);
  assert.equal(client.state, 'CLOSED');
  assert.ok(client.finished);
  assert.deepEqual(states.slice(-2), ['CLOSING', 'CLOSED']);
  client.free();
  await gateway.stop();
});

test('a wrong key is fatal: 4001, FAILED, the end', async () => {
  const gateway = await devGateway();
  const client = new Client('wrong-key', { url: gateway.url(), ...FAST });
  client.connect();
  const [fatal] = await once(client, 'fatal');
  assert.equal(fatal.code, 4001);
  if (!client.finished) await once(client, 'end');
  assert.equal(client.state, 'FAILED');
  client.free();
  await gateway.stop();
});

test('async iteration over wss with the dev CA and zlib', async () => {
  const gateway = await devGateway('--tls', '--echo');
  const client = new Client('dev-key', { url: gateway.url('v=1&compression=zlib'), ca: gateway.ca, ...FAST });
  client.connect();
  const seen = [];
  for await (const event of client) {
    if (event.type === 'READY') client.send('hello', { n: 1 });
    if (event.type === 'DISPATCH') seen.push(event.name);
    if (event.name === 'ECHO') {
      assert.deepEqual(event.data.d, { n: 1 });
      client.close(1000);
    }
  }
  assert.deepEqual(seen, ['bot_connect_success', 'ECHO']);
  assert.equal(client.state, 'CLOSED');
  client.free();
  await gateway.stop();
});

test('twenty clients in one process', async () => {
  const gateway = await devGateway();
  const clients = Array.from({ length: 20 }, () => new Client('dev-key', { url: gateway.url(), ...FAST }));
  await Promise.all(clients.map((client) => {
    const ready = once(client, 'ready', 20000);
    client.connect();
    return ready;
  }));
  await Promise.all(clients.map((client) => client.close()));
  for (const client of clients) client.free();
  await gateway.stop();
});

test('a slow consumer loses nothing: 3000 events in order through a queue of 16', async () => {
  const gateway = await devGateway();
  const client = new Client('dev-key', { url: gateway.url('v=1&fault_flood=3000'), limits: { maxQueuedEvents: 16 }, ...FAST });
  client.connect();
  let next = 0;
  for await (const event of client) {
    if (event.name !== 'FLOOD') continue;
    assert.equal(event.data.seq, next);
    next += 1;
    if (next % 250 === 0) await new Promise((resolve) => setTimeout(resolve, 50)); // a slow host
    if (next === 3000) client.close(1000);
  }
  assert.equal(next, 3000);
  assert.ok(client.stats().queueFullCount > 0, 'the library never had to hold back');
  client.free();
  await gateway.stop();
});

test('a client nobody references is collected, and the process exits on its own', async () => {
  const gateway = await devGateway();
  const script = `
    const { Client } = require(${JSON.stringify(path.resolve(__dirname, '..'))});
    let client = new Client('dev-key', { url: ${JSON.stringify(gateway.url())} });
    client.connect();
    client.once('ready', () => {
      client = null;
      const collect = setInterval(() => global.gc(), 50);
      setTimeout(() => clearInterval(collect), 1000).unref();
      collect.unref();
    });
  `;
  const started = Date.now();
  const child = spawnSync(process.execPath, ['--expose-gc', '-e', script], { timeout: 20000, encoding: 'utf8' });
  assert.equal(child.status, 0, `exit ${child.status} ${child.signal}: ${child.stderr}`);
  assert.ok(Date.now() - started < 20000);
  await gateway.stop();
});
