import { createHash } from 'node:crypto';

/** OpenSSH's fingerprint of a raw public key blob: "SHA256:" + unpadded base64 of sha256. */
export function sshFingerprint(keyBlob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '');
}

/** Compare fingerprints as OpenSSH prints them, tolerating a trailing "=". */
export function sameFingerprint(a: string, b: string): boolean {
  return a.replace(/=+$/, '') === b.replace(/=+$/, '');
}
