import { describe, expect, it } from 'vitest';
import { analyze } from '../../src/analysis/analyze.js';
import { defaultSizing } from '../../src/analysis/kernel-defaults.js';
import { effectiveSysctl, persistenceGaps, settingsOverriding, sysctlFilesInOrder } from '../../src/analysis/persistence.js';
import { GIB_KB, NETNS_WRITABLE, THRESHOLDS, makeFacts, makeTable } from '../support/facts-fixtures.js';

describe('kernel default table size (>= 5.15: max = buckets)', () => {
  it('sizes from RAM', () => {
    expect(defaultSizing(16 * GIB_KB, '6.18.0', null)).toMatchObject({ buckets: 262_144, max: 262_144 });
    expect(defaultSizing(2 * GIB_KB, '6.1.0-18-amd64', null)).toMatchObject({ buckets: 65_536, max: 65_536 });
    expect(defaultSizing(GIB_KB / 2, '6.1.0', null)).toMatchObject({ buckets: 4096, max: 4096, proportional: true });
  });
  it('max = 8 x hashsize when the module parameter is set', () => {
    expect(defaultSizing(16 * GIB_KB, '6.18.0', 16_384)).toMatchObject({ buckets: 16_384, max: 131_072 });
  });
  it('unknown before 5.15', () => {
    expect(defaultSizing(16 * GIB_KB, '5.10.0-28-amd64', null)).toBeNull();
  });
});

describe('sysctl.d order', () => {
  it('sorts by file name across directories, /etc shadows /usr/lib, /etc/sysctl.conf last', () => {
    const files = [
      { path: '/etc/sysctl.conf', keys: {} },
      { path: '/usr/lib/sysctl.d/50-default.conf', keys: {} },
      { path: '/etc/sysctl.d/99-conntrack.conf', keys: {} },
      { path: '/etc/sysctl.d/50-default.conf', keys: {} },
      { path: '/etc/sysctl.d/10-a.conf', keys: {} },
    ];
    expect(sysctlFilesInOrder(files).map((f) => f.path)).toEqual([
      '/etc/sysctl.d/10-a.conf',
      '/etc/sysctl.d/50-default.conf',
      '/etc/sysctl.d/99-conntrack.conf',
      '/etc/sysctl.conf',
    ]);
  });

  it('last setting wins; slash and legacy key names are understood', () => {
    const facts = makeFacts({
      persistence: {
        sysctlFiles: [
          { path: '/etc/sysctl.d/99-conntrack.conf', keys: { 'net.netfilter.nf_conntrack_max': '262144' } },
          { path: '/etc/sysctl.d/10-old.conf', keys: { 'net/netfilter/nf_conntrack_max': '65536', 'net.nf_conntrack_max': '131072' } },
        ],
      },
    });
    expect(effectiveSysctl(facts).get('nf_conntrack_max')).toEqual({ key: 'nf_conntrack_max', value: '262144', path: '/etc/sysctl.d/99-conntrack.conf' });
    expect(settingsOverriding(facts, '/etc/sysctl.d/90-conntrack-ops.conf', 'nf_conntrack_max').map((s) => s.path)).toEqual([
      '/etc/sysctl.d/99-conntrack.conf',
    ]);
  });
});

describe('not-persistent', () => {
  it('finds runtime-only values and values a file would revert', () => {
    const facts = makeFacts({
      max: 524_288,
      timeouts: { nf_conntrack_tcp_timeout_established: 3600 },
      persistence: { sysctlFiles: [{ path: '/etc/sysctl.d/99-conntrack.conf', keys: { 'net.netfilter.nf_conntrack_tcp_timeout_time_wait': '30' } }] },
    });
    expect(persistenceGaps(facts)).toEqual([
      { key: 'nf_conntrack_max', runtime: 524_288, boot: 262_144, bootSource: 'kernel default' },
      { key: 'nf_conntrack_tcp_timeout_established', runtime: 3600, boot: 432_000, bootSource: 'kernel default' },
      { key: 'nf_conntrack_tcp_timeout_time_wait', runtime: 120, boot: 30, bootSource: '/etc/sysctl.d/99-conntrack.conf' },
    ]);
    const f = analyze(facts, makeTable(), THRESHOLDS).find((x) => x.id === 'not-persistent');
    expect(f?.severity).toBe('warning');
    expect(f?.title).toBe(
      '3 runtime settings lost at reboot: max 524,288 -> 262,144, tcp_timeout_established 3,600 -> 432,000, tcp_timeout_time_wait 120 -> 30',
    );
    expect(f?.evidence['nf_conntrack_max']).toBe('runtime 524288, after reboot 262144 (kernel default)');
  });

  it('a resized hash table without modprobe.d is lost at reboot', () => {
    const facts = makeFacts({ buckets: 524_288, hashsize: 524_288, max: 524_288, persistence: { sysctlFiles: [{ path: '/etc/sysctl.d/90-x.conf', keys: { 'net.netfilter.nf_conntrack_max': '524288' } }] } });
    expect(persistenceGaps(facts)).toEqual([{ key: 'hashsize', runtime: 524_288, boot: 262_144, bootSource: 'kernel default' }]);
  });

  it('modprobe.d hashsize counts as persisted', () => {
    const facts = makeFacts({
      buckets: 131_072,
      max: 1_048_576,
      persistence: { modprobeFiles: [{ path: '/etc/modprobe.d/nf.conf', hashsize: 131_072 }] },
    });
    expect(persistenceGaps(facts)).toEqual([]);
  });

  it('table size is not checked in a network namespace (it belongs to the host)', () => {
    const facts = makeFacts({ max: 524_288, writable: NETNS_WRITABLE });
    expect(persistenceGaps(facts)).toEqual([]);
  });

  it('defaults everywhere: nothing to persist', () => {
    expect(persistenceGaps(makeFacts())).toEqual([]);
  });
});
