/** JSON text read back from Redis: the parsed value, or null when it is not JSON (then a zod schema rejects it). */
export function jsonOrNull(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}
