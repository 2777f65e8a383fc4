/**
 * The server side of one WebSocket connection (RFC 6455), enough for Socket Mode: the
 * opening handshake on an HTTP upgrade, text frames both ways (client frames are masked,
 * fragmented messages are joined), ping -> pong, the server's own pings, and the close
 * handshake. No extensions (no permessage-deflate: the 101 answer offers none).
 * Written here because `ws` is not installed (@slack/socket-mode 3 uses undici's client).
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const OP = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;
/** Socket Mode messages are small; anything bigger is a protocol error here. */
const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export interface WebSocketHandlers {
  onText(text: string): void;
  onClose(code: number | null): void;
}

export class ServerWebSocket {
  private buffer = Buffer.alloc(0);
  private fragments: Buffer[] = [];
  private closeSent = false;
  private closed = false;

  private constructor(
    private readonly socket: Duplex,
    private readonly handlers: WebSocketHandlers,
  ) {
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('close', () => this.finish(null));
    socket.on('error', () => this.finish(null));
  }

  /** Completes the handshake for `req` (or answers 400 and returns null). */
  static accept(req: IncomingMessage, socket: Duplex, head: Buffer, handlers: WebSocketHandlers): ServerWebSocket | null {
    const key = req.headers['sec-websocket-key'];
    if (typeof key !== 'string' || (req.headers['upgrade'] ?? '').toLowerCase() !== 'websocket') {
      socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
      return null;
    }
    const accept = createHash('sha1').update(key + GUID).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\n\r\n`);
    const ws = new ServerWebSocket(socket, handlers);
    if (head.length > 0) ws.receive(head);
    return ws;
  }

  get isOpen(): boolean {
    return !this.closed && !this.closeSent;
  }

  sendText(text: string): boolean {
    if (!this.isOpen) return false;
    this.socket.write(frame(OP.text, Buffer.from(text, 'utf8')));
    return true;
  }

  ping(payload = 'ping'): void {
    if (this.isOpen) this.socket.write(frame(OP.ping, Buffer.from(payload)));
  }

  /** Starts the close handshake (the peer answers with its close frame), or ends a socket that does not answer within 2 s. */
  close(code = 1000): void {
    if (this.closed || this.closeSent) return;
    this.closeSent = true;
    const body = Buffer.alloc(2);
    body.writeUInt16BE(code);
    this.socket.write(frame(OP.close, body));
    setTimeout(() => this.socket.destroy(), 2000).unref();
  }

  /** Drops the TCP connection without a close frame (a network failure). */
  terminate(): void {
    this.socket.destroy();
  }

  private finish(code: number | null): void {
    if (this.closed) return;
    this.closed = true;
    this.handlers.onClose(code);
  }

  private receive(chunk: Buffer): void {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    for (;;) {
      const parsed = parseFrame(this.buffer);
      if (parsed === null) return;
      if (parsed === 'too-large') {
        this.close(1009);
        return;
      }
      this.buffer = this.buffer.subarray(parsed.length);
      this.onFrame(parsed.fin, parsed.opcode, parsed.payload);
    }
  }

  private onFrame(fin: boolean, opcode: number, payload: Buffer): void {
    switch (opcode) {
      case OP.ping:
        if (!this.closed) this.socket.write(frame(OP.pong, payload));
        return;
      case OP.pong:
        return;
      case OP.close: {
        const code = payload.length >= 2 ? payload.readUInt16BE(0) : null;
        if (!this.closeSent) {
          this.closeSent = true;
          this.socket.write(frame(OP.close, payload.subarray(0, 2)));
        }
        this.socket.end();
        this.finish(code);
        return;
      }
      case OP.text:
      case OP.binary:
      case OP.continuation: {
        this.fragments.push(payload);
        if (!fin) return;
        const message = Buffer.concat(this.fragments);
        this.fragments = [];
        this.handlers.onText(message.toString('utf8'));
        return;
      }
      default:
        this.close(1002);
    }
  }
}

function frame(opcode: number, payload: Buffer): Buffer {
  const len = payload.length;
  const header = len < 126 ? Buffer.alloc(2) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  header[0] = 0x80 | opcode;
  if (len < 126) header[1] = len;
  else if (len < 65536) {
    header[1] = 126;
    header.writeUInt16BE(len, 2);
  } else {
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(len), 2);
  }
  return Buffer.concat([header, payload]);
}

function parseFrame(buf: Buffer): { fin: boolean; opcode: number; payload: Buffer; length: number } | 'too-large' | null {
  if (buf.length < 2) return null;
  const fin = (buf[0]! & 0x80) !== 0;
  const opcode = buf[0]! & 0x0f;
  const masked = (buf[1]! & 0x80) !== 0;
  let len = buf[1]! & 0x7f;
  let offset = 2;
  if (len === 126) {
    if (buf.length < 4) return null;
    len = buf.readUInt16BE(2);
    offset = 4;
  } else if (len === 127) {
    if (buf.length < 10) return null;
    const big = buf.readBigUInt64BE(2);
    if (big > BigInt(MAX_MESSAGE_BYTES)) return 'too-large';
    len = Number(big);
    offset = 10;
  }
  if (len > MAX_MESSAGE_BYTES) return 'too-large';
  const maskBytes = masked ? 4 : 0;
  if (buf.length < offset + maskBytes + len) return null;
  const payload = Buffer.from(buf.subarray(offset + maskBytes, offset + maskBytes + len));
  if (masked) {
    const mask = buf.subarray(offset, offset + 4);
    for (let i = 0; i < payload.length; i++) payload[i] = payload[i]! ^ mask[i % 4]!;
  }
  return { fin, opcode, payload, length: offset + maskBytes + len };
}
