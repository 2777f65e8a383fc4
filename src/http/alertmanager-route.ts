/**
 * POST /alertmanager: Alertmanager's webhook (payload v4) on the bot's PORT, in both Slack modes.
 *
 *   503  ALERTMANAGER_TOKEN is not set: the route accepts nothing (says it is not configured);
 *   401  missing or wrong `Authorization: Bearer <token>` (compared in constant time);
 *   413  body larger than MAX_BODY_BYTES;   400  not JSON, or not a v4 payload (zod);
 *   200  handled, with one line per alert (accepted / duplicate / unknown_gateway);
 *   500  an alert could not be handled (Redis, the queue): Alertmanager retries the delivery.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { logger } from '../infra/logger.js';
import { metrics } from '../metrics/registry.js';
import { webhookPayloadSchema } from '../monitor/alertmanager.js';
import type { AlertmanagerReceiver } from '../monitor/alertmanager-receiver.js';
import { readBody, sendJson, BodyTooLargeError } from './respond.js';

/** 1,000 alerts (the schema's cap) of about 1 KB each. */
export const MAX_BODY_BYTES = 1024 * 1024;

/** Equal strings, in time independent of where they differ (digests: equal lengths for timingSafeEqual). */
export function sameToken(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(expected));
}

function bearerOf(req: IncomingMessage): string | null {
  const header = req.headers.authorization;
  const m = typeof header === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return m ? m[1]! : null;
}

export function alertmanagerHandler(receiver: AlertmanagerReceiver, token: string | undefined) {
  const answer = (res: ServerResponse, status: number, body: unknown) => {
    metrics.alertRequests.inc({ code: String(status) });
    sendJson(res, status, body);
  };
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!token) {
      req.resume();
      return answer(res, 503, { error: 'the Alertmanager receiver is not configured: set ALERTMANAGER_TOKEN on the bot (and the same token in webhook_configs credentials_file)' });
    }
    const bearer = bearerOf(req);
    if (bearer === null || !sameToken(bearer, token)) {
      req.resume();
      return answer(res, 401, { error: 'missing or wrong bearer token' });
    }
    let raw: Buffer;
    try {
      raw = await readBody(req, MAX_BODY_BYTES);
    } catch (err) {
      if (err instanceof BodyTooLargeError) return answer(res, 413, { error: `body larger than ${MAX_BODY_BYTES} bytes` });
      throw err;
    }
    let json: unknown;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch {
      return answer(res, 400, { error: 'body is not JSON' });
    }
    const payload = webhookPayloadSchema.safeParse(json);
    if (!payload.success) {
      return answer(res, 400, { error: 'not an Alertmanager webhook payload (version 4)', issues: payload.error.issues.slice(0, 10).map((i) => `${i.path.join('.')}: ${i.message}`) });
    }
    try {
      const alerts = await receiver.receive(payload.data);
      return answer(res, 200, { alerts });
    } catch (err) {
      logger.error({ err: (err as Error).message, groupKey: payload.data.groupKey }, 'alertmanager delivery failed');
      return answer(res, 500, { error: 'could not handle the alerts; retry' });
    }
  };
}
