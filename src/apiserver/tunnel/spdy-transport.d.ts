// The part of spdy-transport (a CommonJS package without types) that the SPDY client uses.
declare module 'spdy-transport' {
  import type { Duplex } from 'node:stream';
  import type { EventEmitter } from 'node:events';

  export interface SpdyStream extends Duplex {
    readonly id: number;
    abort(code?: string, callback?: () => void): void;
  }

  export interface RequestOptions {
    method: string;
    path: string;
    host?: string;
    headers: Record<string, string>;
  }

  export interface SpdyConnection extends EventEmitter {
    start(version: number): void;
    request(options: RequestOptions, callback?: (err: Error | null, stream: SpdyStream) => void): SpdyStream;
    destroyStreams(err?: Error): void;
    end(callback?: () => void): void;
  }

  export interface ConnectionOptions {
    protocol: 'spdy' | 'http2';
    isServer: boolean;
    maxChunk?: number | false;
  }

  const transport: {
    connection: { create(socket: Duplex, options: ConnectionOptions): SpdyConnection };
  };
  export default transport;
}
