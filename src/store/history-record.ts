/** One record of a gateway's history: a check, a decision or an outcome (who, when, which plan). */
import { z } from 'zod';

export const historyRecordSchema = z.object({
  at: z.string(),
  gateway: z.string(),
  event: z.enum(['check', 'approved', 'rejected', 'expired', 'applied', 'apply-failed', 'rolled-back', 'rollback-failed', 'refused', 'follow-up', 'closed']),
  actor: z.string(),
  planId: z.string().nullable(),
  /** One line: what the outcome was (severity, counts, failing step...). */
  summary: z.string(),
  /** For `follow-up`: did the apply stop the drops? */
  stopped: z.boolean().optional(),
});
export type HistoryRecord = z.infer<typeof historyRecordSchema>;
