// Type declarations of the Utilbot Gateway client for Node.js (index.js).
import { EventEmitter } from 'node:events';

export type EventType = 'READY' | 'DISPATCH' | 'ERROR' | 'CLOSED' | 'FATAL' | 'STATE' | 'LOG';
export type State = 'IDLE' | 'CONNECTING' | 'IDENTIFYING' | 'READY' | 'RECONNECTING' | 'CLOSING' | 'CLOSED' | 'FAILED';

export interface GatewayEvent {
  type: EventType;
  /** The client's state when it happened (STATE events: the new state). */
  state: State;
  /** DISPATCH: the event name (t). */
  name: string | null;
  /** DISPATCH, ERROR: d, parsed (the library validated it as JSON). */
  data: unknown;
  /** ERROR, CLOSED, FATAL, LOG: the text. */
  message: string | null;
  /** ERROR: e; CLOSED, FATAL: the close code; LOG: the level. */
  code: number;
  hasCode?: boolean;
  local?: boolean;
  /** CLOSED: whether a new attempt follows. */
  reconnect?: boolean;
  httpStatus?: number;
  /** CLOSED: the kind of local problem ("UBG_EPROXY"...), "UBG_OK" for none. */
  result?: string;
}

export interface ClientOptions {
  /** Default wss://gateway.utilbot.co/?v=1 */
  url?: string;
  type?: string;
  compression?: 'zlib' | null;
  /** A CA file (PEM) to trust instead of the system store. */
  ca?: string;
  /** http://, https://, socks5:// or socks5h:// (user:password@ allowed). */
  proxy?: string;
  /** false: ignore https_proxy, http_proxy, all_proxy and no_proxy. Default true. */
  proxyFromEnv?: boolean;
  /** [base, cap] of the reconnect backoff, in milliseconds. */
  reconnect?: [number, number];
  timeouts?: { connect?: number; hello?: number; close?: number };
  limits?: { maxMessageBytes?: number; maxQueuedSends?: number; maxQueuedEvents?: number };
  logLevel?: 'none' | 'error' | 'warning' | 'info' | 'debug';
}

export interface Stats {
  state: State;
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
  reconnects: number;
  lastLatencyUs: number;
  averageLatencyUs: number;
  queuedEvents: number;
  queueFullCount: number;
  sendsFailed: number;
}

export class GatewayError extends Error {
  /** The library's result name, "UBG_EINVAL"; for gateway errors, the e code. */
  code: string | number;
}
export class InvalidArgumentError extends GatewayError {}
export class InvalidStateError extends GatewayError {}
export class ClientClosedError extends GatewayError {}
export class QueueFullError extends GatewayError {}
export class GatewayRefusedError extends GatewayError {}

export class Client extends EventEmitter implements AsyncIterable<GatewayEvent> {
  constructor(key: string, options?: ClientOptions);
  connect(): this;
  send(name: string, data?: unknown): void;
  /** Resolves once the client is CLOSED and every event was delivered. */
  close(code?: number): Promise<void>;
  /** Frees the client at once: no event after it. */
  free(): void;
  readonly state: State;
  readonly finished: boolean;
  stats(): Stats;
  [Symbol.asyncIterator](): AsyncIterator<GatewayEvent>;

  on(event: 'ready' | 'dispatch' | 'close' | 'fatal' | 'log', listener: (event: GatewayEvent) => void): this;
  on(event: 'error', listener: (error: GatewayError, event: GatewayEvent) => void): this;
  on(event: 'state', listener: (state: State) => void): this;
  on(event: 'end', listener: () => void): this;
  /** Any other name: that op 0 event's data. */
  on(event: string, listener: (data: any, event: GatewayEvent) => void): this;
}

export const DEFAULT_URL: string;
export function version(): string;
