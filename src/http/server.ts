/**
 * Socket Mode has no HTTP server of its own: this one serves the bot's routes (./routes.ts)
 * on PORT, the same handlers Bolt's custom routes serve in HTTP mode. Anything else is 404,
 * a known path with another method 405.
 */
import { createServer, type Server } from 'node:http';
import type { HttpRoute } from './routes.js';
import { sendText } from './respond.js';

export function routesServer(routes: readonly HttpRoute[]): Server {
  return createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    const forPath = routes.filter((r) => r.path === path);
    const route = forPath.find((r) => r.method === (req.method ?? 'GET').toUpperCase());
    if (route) return route.handler(req, res);
    req.resume();
    if (forPath.length) return void res.writeHead(405, { allow: forPath.map((r) => r.method).join(', '), 'content-type': 'text/plain' }).end('method not allowed\n');
    sendText(res, 404, 'not found\n');
  });
}

/** Listen and resolve once listening (a port taken rejects, instead of an unhandled 'error'). */
export function listen(server: Server, port: number, host?: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

export function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
