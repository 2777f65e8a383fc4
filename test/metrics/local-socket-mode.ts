/**
 * A local Slack Socket Mode endpoint for tests, enough for @slack/socket-mode to connect and
 * stay connected: `apps.connections.open` answers a ws:// URL on this server; the WebSocket
 * upgrade (RFC 6455) is accepted, `hello` is sent, client pings are answered with pongs (the
 * client closes a connection whose pongs stop) and the server pings every few seconds.
 * Every other Web API method is forwarded to `forwardTo` (the local Slack API server), so
 * the app's client and the Socket Mode client can share one SLACK_API_URL, as with Slack.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';

const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

function frame(opcode: number, payload: Buffer): Buffer {
  if (payload.length < 126) return Buffer.concat([Buffer.from([0x80 | opcode, payload.length]), payload]);
  if (payload.length > 0xffff) throw new Error('local socket mode sends frames up to 64 KiB');
  const head = Buffer.from([0x80 | opcode, 126, 0, 0]);
  head.writeUInt16BE(payload.length, 2);
  return Buffer.concat([head, payload]);
}

/** Reads the client's (masked) frames from `buf`; returns the frames and the unread rest. */
function readFrames(buf: Buffer): { frames: { opcode: number; payload: Buffer }[]; rest: Buffer } {
  const frames: { opcode: number; payload: Buffer }[] = [];
  let off = 0;
  for (;;) {
    if (buf.length - off < 2) break;
    const opcode = buf[off]! & 0x0f;
    const masked = (buf[off + 1]! & 0x80) !== 0;
    let len = buf[off + 1]! & 0x7f;
    let head = 2;
    if (len === 126) {
      if (buf.length - off < 4) break;
      len = buf.readUInt16BE(off + 2);
      head = 4;
    } else if (len === 127) {
      if (buf.length - off < 10) break;
      len = Number(buf.readBigUInt64BE(off + 2));
      head = 10;
    }
    const maskLen = masked ? 4 : 0;
    if (buf.length - off < head + maskLen + len) break;
    const mask = buf.subarray(off + head, off + head + maskLen);
    const payload = Buffer.from(buf.subarray(off + head + maskLen, off + head + maskLen + len));
    if (masked) for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i % 4]!;
    frames.push({ opcode, payload });
    off += head + maskLen + len;
  }
  return { frames, rest: buf.subarray(off) };
}

export interface LocalSocketMode {
  /** SLACK_API_URL for the Socket Mode client (`.../api/`). */
  apiUrl: string;
  /** Connections that received `hello`. */
  connections(): number;
  close(): Promise<void>;
}

async function forward(req: IncomingMessage, res: ServerResponse, apiUrl: string): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  const headers: Record<string, string> = {};
  for (const h of ['content-type', 'authorization']) {
    const v = req.headers[h];
    if (typeof v === 'string') headers[h] = v;
  }
  const answer = await fetch(`${apiUrl}${(req.url ?? '').replace(/^\/api\//, '')}`, { method: req.method ?? 'POST', headers, body: req.method === 'GET' ? undefined : Buffer.concat(chunks) });
  res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' }).end(Buffer.from(await answer.arrayBuffer()));
}

export async function startLocalSocketMode(forwardTo: string): Promise<LocalSocketMode> {
  const sockets = new Set<Duplex>();
  let hellos = 0;
  const server: Server = createServer((req, res) => {
    const { port } = server.address() as AddressInfo;
    if (req.url === '/api/apps.connections.open') {
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, url: `ws://127.0.0.1:${port}/link` }));
      return;
    }
    forward(req, res, forwardTo).catch(() => res.writeHead(502).end());
  });
  server.on('upgrade', (req, socket) => {
    const key = req.headers['sec-websocket-key'];
    if (typeof key !== 'string') return socket.destroy();
    const accept = createHash('sha1').update(key + WS_GUID).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    sockets.add(socket);
    socket.write(frame(0x1, Buffer.from(JSON.stringify({ type: 'hello', num_connections: 1, debug_info: { host: 'local', approximate_connection_time: 3600 }, connection_info: { app_id: 'A0LOCAL01' } }))));
    hellos += 1;
    const pinger = setInterval(() => socket.write(frame(0x9, Buffer.from('ping'))), 5_000);
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      const { frames, rest } = readFrames(Buffer.concat([pending, chunk]));
      pending = Buffer.from(rest);
      for (const f of frames) {
        if (f.opcode === 0x9) socket.write(frame(0xa, f.payload));
        if (f.opcode === 0x8) {
          socket.end(frame(0x8, Buffer.alloc(0)));
        }
      }
    });
    const forget = () => {
      clearInterval(pinger);
      sockets.delete(socket);
    };
    socket.on('close', forget);
    socket.on('error', forget);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    apiUrl: `http://127.0.0.1:${port}/api/`,
    connections: () => hellos,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
