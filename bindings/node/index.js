'use strict';
// The Utilbot Gateway client for Node.js, over the C library through a Node-API addon
// (src/addon.c). No JavaScript runs on a library thread: events are pulled on Node's own loop
// when the client's event descriptor is readable, in batches.
const { EventEmitter } = require('node:events');
const path = require('node:path');

const native = require(process.env.UBG_NODE_ADDON || path.join(__dirname, 'build', 'utilbot_gateway.node'));

const EVENT_TYPES = [null, 'READY', 'DISPATCH', 'ERROR', 'CLOSED', 'FATAL', 'STATE', 'LOG'];
const STATES = ['IDLE', 'CONNECTING', 'IDENTIFYING', 'READY', 'RECONNECTING', 'CLOSING', 'CLOSED', 'FAILED'];
const LOG_LEVELS = { none: 0, error: 1, warning: 2, info: 3, debug: 4 };
const DEFAULT_URL = 'wss://gateway.utilbot.co/?v=1';
// An async iterator holding this many events stops taking more from the library until its
// consumer catches up; the library's bounded queue then pauses reading from the gateway.
const ITERATOR_HIGH_WATER = 1024;

/** A failed call: `code` is the library's result name ("UBG_EINVAL"). */
class GatewayError extends Error {
  constructor(message, code) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}
/** A bad argument: not a string, not JSON, a bad URL (UBG_EINVAL, UBG_EJSON). */
class InvalidArgumentError extends GatewayError {}
/** A call not allowed now: sending before connect, settings after it (UBG_ESTATE). */
class InvalidStateError extends GatewayError {}
/** The client is closed or freed (UBG_ECLOSED, UBG_EHANDLE). */
class ClientClosedError extends GatewayError {}
/** A bounded queue is full: try again later (UBG_EQUEUEFULL). */
class QueueFullError extends GatewayError {}
/** The gateway refused the client for good: 4000, 4001 or 4007 (UBG_EREFUSED). */
class GatewayRefusedError extends GatewayError {}

const ERROR_CLASSES = {
  UBG_EINVAL: InvalidArgumentError,
  UBG_EJSON: InvalidArgumentError,
  UBG_ESTATE: InvalidStateError,
  UBG_ECLOSED: ClientClosedError,
  UBG_EHANDLE: ClientClosedError,
  UBG_EQUEUEFULL: QueueFullError,
  UBG_EREFUSED: GatewayRefusedError,
};

function call(fn) {
  try {
    return fn();
  } catch (error) {
    if (error && typeof error.code === 'string' && error.code.startsWith('UBG_')) {
      const Kind = ERROR_CLASSES[error.code] || GatewayError;
      throw new Kind(`${error.code}: ${error.message}`, error.code);
    }
    throw error;
  }
}

/** One event. `data` (d) is parsed from its JSON on first access: a handler that only counts
 *  events, or reads the name, pays nothing for it. */
class GatewayEvent {
  constructor(raw) {
    this.type = EVENT_TYPES[raw.type];
    this.state = STATES[raw.state];
    this.name = raw.name;
    this.message = raw.message;
    this.code = raw.code;
    this._raw = raw;
    this._data = undefined;
  }

  get data() {
    if (this._data === undefined) this._data = this._raw.data === null ? null : JSON.parse(this._raw.data);
    return this._data;
  }

  /** ERROR: whether the gateway sent e. */
  get hasCode() {
    return this._raw.hasCode;
  }

  /** ERROR, CLOSED: the library found the problem itself. */
  get local() {
    return this._raw.local;
  }

  /** CLOSED: whether a new attempt follows. */
  get reconnect() {
    return this._raw.reconnect;
  }

  get httpStatus() {
    return this._raw.httpStatus;
  }

  /** CLOSED: the kind of local problem ("UBG_EPROXY"...), "UBG_OK" for none. */
  get result() {
    return this._raw.result;
  }

  toJSON() {
    return { type: this.type, state: this.state, name: this.name, data: this.data, message: this.message, code: this.code };
  }
}

/**
 * One bot connection (one shard) that reconnects by itself.
 *
 * Events: 'ready', 'dispatch' (every op 0 event) and the event's own name (its data), 'error'
 * (gateway and local errors; only when a listener is set, so an unheard one never throws),
 * 'close' (a connection or attempt ended), 'fatal', 'state', 'log', and 'end' once no event will
 * come again. Or iterate: `for await (const event of client)`.
 */
class Client extends EventEmitter {
  constructor(key, options = {}) {
    super();
    if (typeof key !== 'string' || key === '') throw new InvalidArgumentError('the key must be a non-empty string', 'UBG_EINVAL');
    // The addon holds the callback strongly; the callback holds the client weakly, so a client
    // nobody references any more is garbage-collected (and freed by the addon's finalizer).
    const self = new WeakRef(this);
    this._handle = call(() => native.create(key, (events, finished) => self.deref()?._take(events, finished)));
    this._finished = false;
    this._iterators = new Set();
    try {
      this._configure(options);
    } catch (error) {
      native.free(this._handle);
      throw error;
    }
  }

  _configure(options) {
    const set = (what, ...values) => call(() => native.set(this._handle, what, ...values));
    set('url', options.url ?? DEFAULT_URL);
    if (options.type !== undefined) set('type', options.type);
    if (options.compression !== undefined && options.compression !== null) {
      if (options.compression !== 'zlib') throw new InvalidArgumentError("compression must be 'zlib' or null", 'UBG_EINVAL');
      set('compression', 1);
    }
    if (options.ca !== undefined) set('ca', options.ca);
    if (options.proxy) set('proxy', options.proxy);
    if (options.proxyFromEnv === false) set('proxyFromEnv', 0);
    if (options.reconnect) set('reconnect', options.reconnect[0], options.reconnect[1]);
    if (options.timeouts) {
      const t = options.timeouts;
      set('timeouts', t.connect ?? 0, t.hello ?? 0, t.close ?? 0);
    }
    if (options.limits) {
      const l = options.limits;
      set('limits', l.maxMessageBytes ?? 0, l.maxQueuedSends ?? 0, l.maxQueuedEvents ?? 0);
    }
    if (options.logLevel !== undefined) {
      const level = LOG_LEVELS[options.logLevel];
      if (level === undefined) throw new InvalidArgumentError(`unknown log level ${options.logLevel}`, 'UBG_EINVAL');
      set('logLevel', level);
    }
  }

  /** Connects; it reconnects by itself until close(), free() or a fatal refusal. */
  connect() {
    call(() => native.connect(this._handle));
    return this;
  }

  /** Sends an event named `name` with `data` (an object, serialised as its d). */
  send(name, data) {
    const json = data === undefined || data === null ? null : JSON.stringify(data);
    call(() => native.send(this._handle, name, json));
  }

  /** Closes for good; resolves once the client is CLOSED and every event was delivered. */
  close(code = 1000) {
    if (this._finished) return Promise.resolve();
    const ended = new Promise((resolve) => this.once('end', resolve));
    call(() => native.close(this._handle, code));
    return ended;
  }

  /** Frees the client at once: no event after it. Idempotent. */
  free() {
    native.free(this._handle);
    this._end();
  }

  /** 'IDLE', 'CONNECTING', 'IDENTIFYING', 'READY', 'RECONNECTING', 'CLOSING', 'CLOSED', 'FAILED'. */
  get state() {
    return STATES[call(() => native.state(this._handle))];
  }

  /** Whether no event will come again. */
  get finished() {
    return this._finished;
  }

  stats() {
    const s = call(() => native.stats(this._handle));
    return { ...s, state: STATES[s.state] };
  }

  _take(events, finished) {
    for (const raw of events) {
      const event = new GatewayEvent(raw);
      for (const iterator of this._iterators) iterator.push(event);
      switch (event.type) {
        case 'READY':
          this.emit('ready', event);
          break;
        case 'DISPATCH':
          this.emit('dispatch', event);
          if (event.name && !['ready', 'dispatch', 'error', 'close', 'fatal', 'state', 'log', 'end'].includes(event.name)) {
            this.emit(event.name, event.data, event);
          }
          break;
        case 'ERROR':
          if (this.listenerCount('error') > 0) this.emit('error', new GatewayError(event.message || 'gateway error', event.code), event);
          break;
        case 'CLOSED':
          this.emit('close', event);
          break;
        case 'FATAL':
          this.emit('fatal', event);
          break;
        case 'STATE':
          this.emit('state', event.state);
          break;
        case 'LOG':
          this.emit('log', event);
          break;
        default:
          break;
      }
    }
    if (finished) this._end();
  }

  _end() {
    if (this._finished) return;
    this._finished = true;
    for (const iterator of this._iterators) iterator.end();
    this.emit('end');
  }

  /** Every event from now on, in order; ends once no event will come again. A consumer slower
   *  than the gateway holds the library back (nothing is dropped). */
  [Symbol.asyncIterator]() {
    const client = this;
    const buffered = [];
    const waiting = [];
    let ended = this._finished;
    let paused = false;
    const iterator = {
      push(event) {
        const waiter = waiting.shift();
        if (waiter) {
          waiter({ value: event, done: false });
          return;
        }
        buffered.push(event);
        if (!paused && buffered.length >= ITERATOR_HIGH_WATER) {
          paused = true;
          native.pause(client._handle, true);
        }
      },
      end() {
        ended = true;
        for (const waiter of waiting.splice(0)) waiter({ value: undefined, done: true });
      },
      next() {
        if (buffered.length > 0) {
          const value = buffered.shift();
          if (paused && buffered.length < ITERATOR_HIGH_WATER / 2) {
            paused = false;
            setImmediate(() => {
              if (!client._finished) native.pause(client._handle, false);
            });
          }
          return Promise.resolve({ value, done: false });
        }
        if (ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => waiting.push(resolve));
      },
      return() {
        client._iterators.delete(iterator);
        if (paused) native.pause(client._handle, false);
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() {
        return iterator;
      },
    };
    this._iterators.add(iterator);
    return iterator;
  }
}

module.exports = {
  Client,
  GatewayError,
  InvalidArgumentError,
  InvalidStateError,
  ClientClosedError,
  QueueFullError,
  GatewayRefusedError,
  DEFAULT_URL,
  version: () => native.version(),
};
