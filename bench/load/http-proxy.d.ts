// Minimal typings for the part of `http-proxy` (node-http-proxy) the load-benchmark peer uses;
// the package ships none and @types/http-proxy is not a dependency.
declare module 'http-proxy' {
  import type { Agent, IncomingMessage, ServerResponse } from 'node:http';
  import type { Socket } from 'node:net';

  interface ServerOptions {
    target?: string;
    agent?: Agent;
    xfwd?: boolean;
  }

  interface ProxyServer {
    web(req: IncomingMessage, res: ServerResponse): void;
    on(
      event: 'error',
      listener: (err: Error, req: IncomingMessage, res: ServerResponse | Socket) => void,
    ): this;
  }

  const httpProxy: { createProxyServer(options: ServerOptions): ProxyServer };
  export default httpProxy;
}
